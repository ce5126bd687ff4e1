"""Emotion over time: decode and encode files (codec), the per-frame step and file analysis
(analysis), face tracks (tracking), smoothing (smoothing), per-frame results (timeline), the live
camera (live) and its WebRTC connection settings (ice).

May import core.pipeline, core.explain, core.models and every wing below them.
"""

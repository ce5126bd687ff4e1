"""Measurement and test harness, outside the library: the benchmarks (`make bench`), the headless-
Chromium driver, the stand-in WebRTC camera, the face study, the load test (`make loadtest`), the
deploy check (`make deploy-check`) and the screenshot tool (`make screenshots`).
"""

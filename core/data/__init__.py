"""Labelled face datasets: FER2013 and any folder of labelled faces (datasets), and the real-photo
damage applied to face crops for tests and training (corruptions).

May import core.faces (to decode images), core.labels and core.paths.
"""

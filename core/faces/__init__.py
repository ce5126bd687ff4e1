"""Faces in photos: decode user images safely (images), find faces with MTCNN and crop them like
FER2013 (detection), say whether a crop can be read (quality), draw labels onto a picture (drawing).

Owns every pixel-level step before a classifier. May import core.labels and core.paths only.
"""

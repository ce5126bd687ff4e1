"""FER2013's conventions, used everywhere: its original class order and its 48x48 face crops."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# Folder names other datasets use for the same emotions (CK+, JAFFE, AffectNet, RAF-DB dumps).
_SYNONYMS = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}


def label_index(name: str) -> int:
    """Index of an emotion name (case-insensitive, common synonyms accepted).

    Raises ValueError naming the accepted labels when the name is unknown.
    """
    key = name.strip().lower()
    key = _SYNONYMS.get(key, key)
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion label {name!r}; expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)


CROP_SIZE = 48  # FER2013's faces are 48x48 grayscale; every crop is made to match

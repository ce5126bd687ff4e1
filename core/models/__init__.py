"""Classifiers: the architectures (architectures), the preprocessing a model carries in its card
(preprocess), the registry of weights + cards (registry), averages of models (ensemble), the one
factory by name (loading.load_model) and face crops to probabilities (predict).

May import core.data, core.faces, core.serving, core.labels and core.paths. The registry never
imports the ensemble: loading.load_model is the only place that knows both.
"""

"""Facial emotion recognition studio: the library behind the app and the CLI.

Wings, lowest first (docs/architecture.md): labels, paths < faces, serving < data < models <
explain < pipeline < batch, evaluation, video < training < jobs < cli. A module imports its own
wing or a lower one, never streamlit, ui, pages or tests (tests/test_import_rules.py checks it).
"""

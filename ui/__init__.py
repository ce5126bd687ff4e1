"""Streamlit glue shared by app.py and the pages: cached resources, the model pickers, inputs.

Everything that computes lives in core/; this package only caches and draws.
"""

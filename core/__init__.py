"""Facial emotion recognition studio: the library behind the app, the CLI and the benchmark."""

"""What a server needs to serve many visitors: public mode and its per-visitor limits (public), the
gate on heavy work (gate), the byte-bounded result cache (bounded_cache), and a small C heap (memory).

Pure Python with no model code; may import core.labels and core.paths only.
"""

"""What a server needs to serve many visitors: public mode and its per-visitor limits (public),
what work costs and what public mode refuses (budget), the fair gate on heavy work (gate), the
byte-bounded result cache (bounded_cache), the process-wide gate, cache and stream places
(shared), per-session upload bounds (uploads), and a small C heap (memory).

Pure Python with no model code; may import core.labels and core.paths only.
"""

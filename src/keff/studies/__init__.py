"""Reproducible experiments: the studies behind every figure in BENCHMARKS.md.

Each study is one module (or package) with a config dataclass and ``run(config, *, data) ->
dict``, the JSON-ready results. The studies sit on top of the library: they call encoders,
data, maps, fusion, projection and eval, and nothing in the library imports them.
``benchmarks/<study>.py`` are thin drivers (arguments -> config -> ``run`` -> JSON and plot);
``benchmarks/render.py`` turns the JSON into BENCHMARKS.md.
"""

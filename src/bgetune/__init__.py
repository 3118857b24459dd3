"""bgetune: a reproducible DVC pipeline that fine-tunes BGE-style embedding models on your domain documents."""
__version__ = "0.2.0"

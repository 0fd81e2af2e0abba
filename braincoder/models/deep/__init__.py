"""Deep encoding and decoding models (Keras 3), registered beside the classic models."""

from .embedding import EmbeddingDecoder, RidgeEmbeddingDecoder

__all__ = []
__all__ += ["EmbeddingDecoder", "RidgeEmbeddingDecoder"]

"""Class conditioning shared by every generator and discriminator.

Generators concatenate a learned class embedding to the latent; discriminators add a
projection term (Miyato & Koyama 2018): ``logit = head(h) + <embed(y), h>``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from transgan.errors import ConfigError
from transgan.sampling import check_class_range

# Width of a generator's class embedding: the latent's own width for small latents, capped
# so that the first linear layer of a large generator grows by little.
MAX_CLASS_EMBED_DIM = 128


def class_embed_dim(latent_dim: int, num_classes: int) -> int:
    """Width of the class embedding joined to a latent of ``latent_dim`` (0: unconditional)."""
    return min(latent_dim, MAX_CLASS_EMBED_DIM) if num_classes else 0


def check_labels(labels: Tensor | None, num_classes: int, batch: int) -> Tensor | None:
    """``labels`` as given, after checking they suit a model of ``num_classes`` classes.

    The range is checked where labels live on the CPU; on an accelerator that would cost a
    host synchronisation every step, and :func:`transgan.sampling.class_labels` and the data
    sets already produce labels in range.
    """
    if not num_classes:
        if labels is not None:
            raise ConfigError("this model is unconditional (num_classes 0); it takes no labels")
        return None
    if labels is None:
        raise ConfigError(f"this class-conditional model ({num_classes} classes) needs labels")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ConfigError(f"labels must be integer class indices, got {labels.dtype}")
    if labels.shape != (batch,):
        raise ConfigError(f"expected labels of shape ({batch},), got {tuple(labels.shape)}")
    if labels.device.type == "cpu":
        check_class_range(labels, num_classes)
    return labels


def join_class(z: Tensor, labels: Tensor | None, embed: nn.Embedding | None) -> Tensor:
    """``z`` with the class embedding of ``labels`` concatenated (``z`` itself when
    ``embed`` is None, the unconditional case)."""
    num_classes = embed.num_embeddings if embed is not None else 0
    labels = check_labels(labels, num_classes, z.shape[0])
    if embed is None or labels is None:
        return z
    return torch.cat([z, embed(labels).to(z.dtype)], dim=1)


def project_class(
    logits: Tensor, features: Tensor, labels: Tensor | None, embed: nn.Module | None
) -> Tensor:
    """``logits`` plus the projection term ``<embed(labels), features>`` per image."""
    num_classes = embed.num_embeddings if embed is not None else 0
    labels = check_labels(labels, num_classes, features.shape[0])
    if embed is None or labels is None:
        return logits
    return logits + (embed(labels).to(features.dtype) * features).sum(dim=1)

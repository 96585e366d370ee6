"""Corpus loading and a resumable, per-rank stream of training batches (map-style or streaming datasets).

Each process reads its own shard: map-style datasets through `ShardedBatchSampler` (a permutation seeded by
(seed, epoch), batch j of rank r = slice j·world + r), streaming datasets through `split_dataset_by_node`. The
position (epoch, batches consumed in it) is all a resumed run needs: it restarts the epoch at that batch without
loading the skipped images.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..data.rows import undecoded
from .collate import TrainTransform, collate_click_sets

__all__ = ["BatchStream", "ShardedBatchSampler", "load_split", "undecoded"]


def load_split(path: str, split: str, streaming: bool = False):
    """A split of the parquet corpus (`hf_iis.data.load_corpus`): a `datasets.Dataset`, or `IterableDataset` when
    `streaming`."""
    from ..data.hf_datasets import load_corpus

    return load_corpus(path, split=split, streaming=streaming)


class ShardedBatchSampler(Sampler[list[int]]):
    """Batches of indices for one rank: every epoch a permutation seeded by (seed, epoch), split evenly over ranks.

    Every rank gets the same number of batches, max(1, n // (batch_size · world)) (short datasets wrap around).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if n <= 0:
            raise ValueError("the training split is empty")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def num_batches(self) -> int:
        return max(1, self.n // (self.batch_size * self.world))

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        nb = self.num_batches()
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        perm = np.resize(perm, nb * self.batch_size * self.world)
        for j in range(self.start_batch, nb):
            start = (j * self.world + self.rank) * self.batch_size
            yield perm[start : start + self.batch_size].tolist()


class BatchStream:
    """An endless iterator of collated batches for one rank, with a resumable position `state()`."""

    def __init__(
        self,
        dataset,
        transform: TrainTransform,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        shuffle_buffer: int = 256,
    ) -> None:
        from datasets import IterableDataset

        self.transform = transform
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.streaming = isinstance(dataset, IterableDataset)
        self.epoch, self.batch = 0, 0
        self._iterator: Iterator | None = None
        if self.streaming:
            from datasets.distributed import split_dataset_by_node

            dataset = undecoded(dataset).shuffle(seed=seed, buffer_size=shuffle_buffer)
            self.base = split_dataset_by_node(dataset, rank=rank, world_size=world) if world > 1 else dataset
            self.sampler = None
        else:
            self.base = undecoded(dataset).with_transform(transform)
            self.sampler = ShardedBatchSampler(len(dataset), batch_size, seed, rank, world)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iterator = None

    def _loader(self) -> DataLoader:
        self.transform.epoch = self.epoch
        common: dict[str, Any] = {"collate_fn": collate_click_sets, "num_workers": self.num_workers}
        if self.num_workers > 0:
            common["prefetch_factor"] = 2
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch, self.batch)
            return DataLoader(self.base, batch_sampler=self.sampler, **common)
        dataset = self.base
        dataset.set_epoch(self.epoch)
        if self.batch:
            dataset = dataset.skip(self.batch * self.batch_size)
        columns = list(dataset.column_names or [])
        dataset = dataset.map(self.transform.sample, remove_columns=columns or None)
        return DataLoader(dataset, batch_size=self.batch_size, **common)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        for _ in range(3):  # an empty epoch (everything consumed) moves on to the next one
            if self._iterator is None:
                self._iterator = iter(self._loader())
            try:
                batch = next(self._iterator)
                self.batch += 1
                return batch
            except StopIteration:
                self._iterator = None
                self.epoch, self.batch = self.epoch + 1, 0
        raise RuntimeError("the training data yields no batch")

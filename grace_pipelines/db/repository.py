"""The base of the repository mixins that `StateDB` combines: each one needs the engine and the
transaction that StateDB provides."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Connection, Engine


class Repository:
    engine: Engine

    def begin(self) -> AbstractContextManager[Connection]:  # StateDB's
        raise NotImplementedError

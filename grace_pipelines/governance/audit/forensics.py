"""Forensics: given the stored rows, say which entry was edited, deleted, reordered or inserted
(verify's explanation, not just "the chain is broken")."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from grace_pipelines.governance.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditProblem,
    _self_hash,
)


def _check_anchor(rows: Sequence[AuditEntry], anchor: tuple[int, str]) -> list[AuditProblem]:
    seq, digest = int(anchor[0]), str(anchor[1])
    if seq <= 0:
        return []
    holder = [r for r in rows if r.hash == digest]
    if holder:
        return []
    at_seq = [r for r in rows if r.seq == seq]
    if at_seq:
        return [
            AuditProblem(seq, "edited", f"entry {seq} no longer has the anchored hash {digest[:12]}…", at_seq[0].id)
        ]
    last = rows[-1].seq if rows else 0
    return [
        AuditProblem(
            seq, "deleted", f"the anchored entry {seq} (hash {digest[:12]}…) is gone; the log now ends at {last}"
        )
    ]


# ---- diagnosis ------------------------------------------------------------------------------
def diagnose(rows: Sequence[AuditEntry]) -> list[AuditProblem]:
    """Find and explain tampering in `rows` (ordered by seq).

    The fast path checks the chain as stored: seq 1..N, each hash right, each prev_hash the
    hash before, ids rising with seq. When anything is off it rebuilds the original order from
    the hash links (which an editor cannot fake without recomputing every later hash), places
    every row at its original position, and compares that with what is stored.
    """
    ok = True
    prev = GENESIS_HASH
    last_id = None
    for i, r in enumerate(rows, start=1):
        if r.seq != i or r.prev_hash != prev or _self_hash(r) != r.hash or (last_id is not None and r.id <= last_id):
            ok = False
            break
        prev, last_id = r.hash, r.id
    if ok:
        return []
    return _Diagnosis(rows).run()


class _Diagnosis:
    def __init__(self, rows: Sequence[AuditEntry]) -> None:
        self.rows = list(rows)
        self.problems: list[AuditProblem] = []
        self.flagged: set[int] = set()  # row ids already explained
        self.reported: set[tuple[int, str]] = set()
        self.budget = 1_000_000  # hashes to spend on placing fragments (bounds the worst case)

    def add(self, row: AuditEntry | None, kind: str, detail: str, seq: int | None = None) -> None:
        if row is not None:
            if (row.id, kind) in self.reported:
                return
            self.reported.add((row.id, kind))
            self.flagged.add(row.id)
        self.problems.append(
            AuditProblem(
                row.seq if row is not None and seq is None else seq, kind, detail, row.id if row is not None else None
            )
        )

    def run(self) -> list[AuditProblem]:
        rows = self.rows
        self._index(rows)

        # 1. the longest chain of hash links from genesis is the original log
        seen: set[int] = set()
        main = self._chain_from(self.children.get(GENESIS_HASH, []), seen)
        orig: dict[int, int] = {r.id: i for i, r in enumerate(main, start=1)}  # row id -> original seq
        segments: list[list[AuditEntry]] = [main] if main else []

        # 2. branches off the main chain (a forged row linked into the middle)
        self._report_branches(self._branch_rows(rows, main, seen), orig)

        # 3. fragments: rows whose predecessor is gone (deletion, or an edited hash/prev_hash)
        fragments = self._fragments(rows, seen)
        leftovers = [r for r in rows if r.id not in seen]  # cycles and such: nothing to place them by
        for r in leftovers:
            self.add(r, "inserted", f"entry {r.seq} (id {r.id}) links into a loop of hashes: it was forged")
        segments.extend(self._place_fragments(fragments, orig, max([r.seq for r in rows] + [len(rows)])))

        # 4. gaps between segments: deleted entries, or an entry whose hash was recomputed
        self._report_gaps(segments, orig)

        # 5. content: every placed row must hash right at its original position
        placed = [r for r in rows if r.id in orig and r.id not in self.flagged]
        self._report_content(placed, orig)

        # 6. order: seq as stored, and row ids, must rise with the original order
        in_order = self._report_order(placed, orig)

        # 7. renumbering alone (seq as stored != original, order kept, nothing else explains it)
        if not self.problems:
            self._report_renumbering(in_order, orig)
        return self.problems

    def _index(self, rows: list[AuditEntry]) -> None:
        """Index the rows by their own hash and by the hash they link to."""
        self.by_hash: dict[str, list[AuditEntry]] = {}
        for r in rows:
            self.by_hash.setdefault(r.hash, []).append(r)
        self.children: dict[str, list[AuditEntry]] = {}  # parent hash (or genesis) -> rows linking to it
        for r in rows:
            self.children.setdefault(r.prev_hash, []).append(r)
        self.depth_memo: dict[int, int] = {}

    def _depth(self, r: AuditEntry) -> int:
        """The longest run of hash links from r (iterative: logs are long)."""
        depth_memo, children = self.depth_memo, self.children
        stack, on_stack = [r], {r.id}
        while stack:
            top = stack[-1]
            if top.id in depth_memo:
                stack.pop()
                on_stack.discard(top.id)
                continue
            kids = [k for k in children.get(top.hash, []) if k.id not in on_stack]  # a loop ends here
            pending = [k for k in kids if k.id not in depth_memo]
            if pending:
                stack.extend(pending)
                on_stack.update(k.id for k in pending)
                continue
            depth_memo[top.id] = 1 + max((depth_memo[k.id] for k in kids), default=0)
            stack.pop()
            on_stack.discard(top.id)
        return depth_memo[r.id]

    def _chain_from(self, start_kids: list[AuditEntry], seen: set[int]) -> list[AuditEntry]:
        """The chain that follows the deepest unseen link at each step, marking its rows seen."""
        chain: list[AuditEntry] = []
        kids = start_kids
        while True:
            kids = [k for k in kids if k.id not in seen]
            if not kids:
                return chain
            best = max(kids, key=lambda k: (self._depth(k), -k.id))
            chain.append(best)
            seen.add(best.id)
            kids = self._other_children(best)

    def _other_children(self, r: AuditEntry) -> list[AuditEntry]:
        """The rows that link to r's hash, other than r itself."""
        return [k for k in self.children.get(r.hash, []) if k.id != r.id]

    def _branch_rows(self, rows: list[AuditEntry], main: list[AuditEntry], seen: set[int]) -> list[AuditEntry]:
        """The rows on branches that leave the main chain (or genesis), marking them seen."""
        main_ids = {r.id for r in main}
        branch_rows: list[AuditEntry] = []
        for r in rows:
            if r.id in seen:
                continue
            parent = self.by_hash.get(r.prev_hash, [])
            if r.prev_hash == GENESIS_HASH or any(p.id in main_ids for p in parent):
                branch = [r] + self._chain_from(self._other_children(r), seen | {r.id})
                for b in branch:
                    seen.add(b.id)
                branch_rows.extend(branch)
        return branch_rows

    def _report_branches(self, branch_rows: list[AuditEntry], orig: dict[int, int]) -> None:
        """Report each branch row as inserted after the chain entry it links to."""
        for b in branch_rows:
            parent = next((p for p in self.by_hash.get(b.prev_hash, []) if p.id in orig), None)
            where = f"after entry {parent.seq}" if parent else "at the start"
            self.add(
                b,
                "inserted",
                f"entry {b.seq} (id {b.id}) is not part of the chain: it was slipped in {where}, "
                "whose original successor still links to it directly",
            )

    def _fragments(self, rows: list[AuditEntry], seen: set[int]) -> list[list[AuditEntry]]:
        """The unseen runs of rows whose head's predecessor is gone, marking them seen."""
        by_hash = self.by_hash
        heads = [r for r in rows if r.id not in seen and not any(p.id != r.id for p in by_hash.get(r.prev_hash, []))]
        fragments: list[list[AuditEntry]] = []
        for h in sorted(heads, key=lambda r: (r.seq, r.id)):
            if h.id in seen:
                continue
            seen.add(h.id)
            fragments.append([h] + self._chain_from(self._other_children(h), seen))
        return fragments

    def _place_fragments(
        self, fragments: list[list[AuditEntry]], orig: dict[int, int], max_seq: int
    ) -> list[list[AuditEntry]]:
        """Give each fragment its original positions in `orig`; report those that fit nowhere or collide."""
        taken = set(orig.values())
        placed: list[list[AuditEntry]] = []
        for frag in fragments:
            start = self._place(frag, max_seq)
            if start is None:
                for r in frag:
                    self.add(
                        r,
                        "inserted",
                        f"entry {r.seq} (id {r.id}) fits nowhere in the chain: its hash matches "
                        "no position and its prev_hash no entry"
                        + (" (or the last entry's hashes were edited)" if r.seq == max_seq else ""),
                    )
                continue
            if any(start + i in taken for i in range(len(frag))):
                for r in frag:
                    self.add(
                        r,
                        "inserted",
                        f"entry {r.seq} (id {r.id}) claims position {start} that the chain "
                        "already holds: it was forged",
                    )
                continue
            for i, r in enumerate(frag):
                orig[r.id] = start + i
                taken.add(start + i)
            placed.append(frag)
        return placed

    def _report_gaps(self, segments: list[list[AuditEntry]], orig: dict[int, int]) -> None:
        """Report the positions no segment covers as deleted, and broken joins as recomputed edits."""
        segments.sort(key=lambda seg: orig[seg[0].id])
        covered_to = 0
        prev_tail: AuditEntry | None = None
        for seg in segments:
            head = seg[0]
            first = orig[head.id]
            if first > covered_to + 1:
                missing = list(range(covered_to + 1, first))
                for m in missing:
                    self.problems.append(
                        AuditProblem(
                            m,
                            "deleted",
                            f"entry {m} is missing: entry {first} (now stored as seq {head.seq}, id {head.id}) "
                            f"links to a hash no row has" + self._renumber_note(seg, orig),
                        )
                    )
            elif first == covered_to + 1 and head.prev_hash != (prev_tail.hash if prev_tail else GENESIS_HASH):
                if _self_hash(head, seq=first) != head.hash:
                    pass  # the head itself was edited (its prev_hash or content): reported below
                elif prev_tail is not None:
                    self.add(
                        prev_tail,
                        "edited",
                        f"entry {prev_tail.seq} (id {prev_tail.id}) was changed and its hash "
                        f"recomputed: entry {head.seq} still links to its original hash",
                    )
            covered_to = max(covered_to, orig[seg[-1].id])
            prev_tail = seg[-1]

    def _report_content(self, placed: list[AuditEntry], orig: dict[int, int]) -> None:
        """Report placed rows that hash wrong at their original position: moved content, else edited."""
        bad = [r for r in placed if _self_hash(r, seq=orig[r.id]) != r.hash]
        moved_content: set[int] = set()
        if 1 < len(bad) <= 500:
            for x in bad:
                for y in bad:
                    if x.id != y.id and _self_hash(x, seq=orig[y.id], prev_hash=y.prev_hash) == y.hash:
                        moved_content.add(x.id)
                        self.add(
                            x,
                            "reordered",
                            f"entry {x.seq} (id {x.id}) holds the content of entry {orig[y.id]}: "
                            "rows were swapped or moved",
                        )
                        break
        for r in bad:
            if r.id in moved_content:
                continue
            self.add(r, "edited", f"entry {r.seq} (id {r.id}) was edited: what it says no longer matches its hash")

    def _report_order(self, placed: list[AuditEntry], orig: dict[int, int]) -> list[AuditEntry]:
        """Report rows whose stored seq, then row id, breaks the original order; return the rest in order."""
        in_order = sorted((r for r in placed if r.id not in self.flagged), key=lambda r: orig[r.id])
        for r in self._out_of_order(in_order, key=lambda r: r.seq, orig=orig):
            self.add(
                r,
                "reordered",
                f"entry {r.seq} (id {r.id}) is the original entry {orig[r.id]}: it was moved to another position",
            )
        in_order = [r for r in in_order if r.id not in self.flagged]
        for r in self._out_of_order(in_order, key=lambda r: r.id, orig=orig):
            self.add(
                r,
                "reordered",
                f"entry {r.seq} (id {r.id}) was rewritten into another row: row ids no longer follow the chain order",
            )
        return in_order

    def _report_renumbering(self, in_order: list[AuditEntry], orig: dict[int, int]) -> None:
        """Report the first row whose stored seq differs from its original one as a renumbering."""
        shifted = [r for r in in_order if r.seq != orig[r.id]]
        if shifted:
            r = shifted[0]
            self.add(r, "edited", f"entries were renumbered from entry {orig[r.id]} on (stored as seq {r.seq})")

    @staticmethod
    def _renumber_note(seg: list[AuditEntry], orig: dict[int, int]) -> str:
        shifted = [r for r in seg if r.seq != orig[r.id]]
        if not shifted:
            return ""
        return f"; the entries after it were renumbered (seq {shifted[0].seq} was {orig[shifted[0].id]})"

    def _place(self, frag: list[AuditEntry], max_seq: int) -> int | None:
        """The original seq of a fragment's first row: the first rows that hash right somewhere."""
        budget = min(self.budget, 200_000)
        for i, r in enumerate(frag[:3]):
            if _self_hash(r) == r.hash:
                return r.seq - i
            for d in range(1, max_seq + len(frag) + 2):
                for s in (r.seq - d, r.seq + d):
                    if s >= 1 and _self_hash(r, seq=s) == r.hash:
                        return s - i
                budget -= 2
                self.budget -= 2
                if budget <= 0:
                    return None
        return None

    @staticmethod
    def _out_of_order(rows: list[AuditEntry], key: Any, orig: dict[int, int]) -> list[AuditEntry]:
        """Rows (given in original order) whose `key` breaks the rising order: those outside
        one longest rising run, plus the partner each one swapped places with."""
        if len(rows) < 2:
            return []
        values = [key(r) for r in rows]
        if all(a < b for a, b in pairwise(values)):
            return []
        # swapped pairs first: the row now where another belongs, and that other one
        rank = {v: i for i, v in enumerate(sorted(values))}
        out: set[int] = set()
        for i, v in enumerate(values):
            j = rank[v]
            if j != i and rank[values[j]] == i:
                out.update((i, j))
        # then whatever breaks one longest rising run (patience sorting, O(n log n))
        rest = [i for i in range(len(values)) if i not in out]
        tails: list[int] = []
        tails_at: list[int] = []
        parent: dict[int, int] = {}
        for i in rest:
            j = bisect.bisect_left(tails, values[i])
            if j == len(tails):
                tails.append(values[i])
                tails_at.append(i)
            else:
                tails[j] = values[i]
                tails_at[j] = i
            parent[i] = tails_at[j - 1] if j > 0 else -1
        keep: set[int] = set()
        k = tails_at[-1] if tails_at else -1
        while k >= 0:
            keep.add(k)
            k = parent[k]
        out.update(i for i in rest if i not in keep)
        return [rows[i] for i in sorted(out)]

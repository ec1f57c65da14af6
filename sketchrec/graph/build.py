"""Interaction graphs: nodes of one or more types, weighted sparse adjacency.

Three ways in, all vectorised (no Python loop per row or edge):
- `Graph.from_edges`: an edge list of internal ids;
- `Graph.from_interactions`: the user-item bipartite graph of `Interactions`
  (optionally one graph per event type: click vs purchase, liked vs disliked);
- `Graph.from_columns`: pycleora-style hyperedges — every row of a table links
  the entities of its columns. Column specs take modifiers:
  ``complex::`` (a cell holds several entities: list column or space-separated
  text), ``reflexive::`` (entities of a complex column link to each other),
  ``transient::`` (entities link the others but get no embedding).

Hyperedges are expanded as cliques (every pair of members in different
columns, or in the same reflexive column) as Cleora does. A clique costs
s(s-1)/2 edges for s members, so rows with more than `max_clique` members are
star-expanded instead: a transient hub node per row, linked to each member,
keeps their 2-hop random-walk connection at linear cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from sketchrec.data.idmap import IdMap


@dataclass
class Graph:
    """adjacency : (n, n) CSR float32, A[i, j] = total weight of edges i -> j
    (symmetric for undirected graphs); node_type : (n,) int8 code into
    `type_names`; type_ids[t] maps external ids of type t to positions
    offsets[t] + local id; transient types are propagated through but not embedded.
    """

    adjacency: sp.csr_matrix
    node_type: np.ndarray
    type_names: list[str]
    type_ids: dict[str, IdMap]
    transient: set[str] = field(default_factory=set)
    meta: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return self.adjacency.shape[0]

    @property
    def n_edges(self) -> int:
        """Stored non-zeros (an undirected edge counts twice, a self-loop once)."""
        return self.adjacency.nnz

    def offsets(self) -> dict[str, int]:
        counts = np.bincount(self.node_type, minlength=len(self.type_names))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return {name: int(s) for name, s in zip(self.type_names, starts)}

    def nodes_of(self, type_name: str) -> np.ndarray:
        """Internal node indices of one type, in that type's id order."""
        code = self.type_names.index(type_name)
        return np.flatnonzero(self.node_type == code)

    def embedded_nodes(self) -> np.ndarray:
        keep = np.isin(self.node_type, [self.type_names.index(t) for t in self.transient], invert=True)
        return np.flatnonzero(keep)

    def node_ids(self, nodes: np.ndarray | None = None) -> IdMap:
        """External ids of `nodes` (default all); prefixed "type:" when there are several types."""
        nodes = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes)
        off = self.offsets()
        parts = []
        for code, name in enumerate(self.type_names):
            sel = nodes[self.node_type[nodes] == code]
            if not len(sel):
                continue
            keys = self.type_ids[name].keys.take(pa.array(sel - off[name]))
            if len(self.type_names) > 1:
                keys = pc.binary_join_element_wise(pa.scalar(name), pc.cast(keys, pa.string()), ":")
            parts.append((sel, keys))
        order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
        keys = pa.concat_arrays([p[1] for p in parts]).take(pa.array(order))
        return IdMap(keys, name="node")

    def __repr__(self) -> str:
        counts = np.bincount(self.node_type, minlength=len(self.type_names))
        kinds = ", ".join(f"{n}={c:,}" for n, c in zip(self.type_names, counts))
        return f"Graph(nodes={self.n_nodes:,} [{kinds}], stored edges={self.n_edges:,})"

    # -- persistence: named arrays, no pickle ----------------------------------------
    def to_arrays(self, prefix: str = "graph.") -> dict[str, np.ndarray]:
        """The graph as flat named arrays (`from_arrays` inverts it): the adjacency's CSR parts,
        node types, each type's ids as Arrow IPC bytes (exact key types), the rest as JSON."""
        a = self.adjacency
        arrays = {f"{prefix}indptr": a.indptr, f"{prefix}indices": a.indices, f"{prefix}data": a.data,
                  f"{prefix}node_type": self.node_type,
                  f"{prefix}info": np.array(json.dumps({"type_names": self.type_names,
                                                        "transient": sorted(self.transient),
                                                        "meta": self.meta}, default=_json_value))}
        for i, name in enumerate(self.type_names):
            arrays[f"{prefix}ids.{i}"] = _ipc_bytes(self.type_ids[name])
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "graph.") -> "Graph":
        """The graph `to_arrays` wrote (`arrays`: a mapping, e.g. an open .npz)."""
        info = json.loads(str(arrays[f"{prefix}info"]))
        n = len(arrays[f"{prefix}node_type"])
        adjacency = sp.csr_matrix((arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]),
                                  shape=(n, n))
        adjacency.has_canonical_format = True
        type_ids = {name: _from_ipc_bytes(arrays[f"{prefix}ids.{i}"]) for i, name in enumerate(info["type_names"])}
        return cls(adjacency, np.asarray(arrays[f"{prefix}node_type"]), info["type_names"], type_ids,
                   set(info["transient"]), info["meta"])

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def from_edges(cls, src, dst, weight=None, *, n_nodes: int | None = None, directed: bool = False,
                   ids: IdMap | None = None, name: str = "node") -> "Graph":
        """Edge list of internal ids (n_nodes defaults to max id + 1). Duplicates add up."""
        src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        if src.shape != dst.shape:
            raise ValueError(f"src has {len(src)} entries, dst {len(dst)}")
        n = int(max(src.max(initial=-1), dst.max(initial=-1)) + 1) if n_nodes is None else n_nodes
        w = np.ones(len(src), np.float32) if weight is None else np.asarray(weight, np.float32)
        if len(w) and (not np.all(np.isfinite(w)) or w.min() < 0):
            raise ValueError("edge weights must be finite and non-negative")
        adjacency = _adjacency(src, dst, w, n, directed)
        ids = ids if ids is not None else IdMap(np.arange(n), name=name)
        return cls(adjacency, np.zeros(n, np.int8), [name], {name: ids}, meta={"directed": directed})

    @classmethod
    def read_edges(cls, source=None, *, src: str, dst: str, weight: str | None = None,
                   directed: bool = False, name: str = "node", **read_kwargs) -> "Graph":
        """Edge list from a file or query (see `read_interactions`), both columns one id space."""
        from sketchrec.data.readers import read_interactions
        inter = read_interactions(source, user=src, item=dst, weight=weight, **read_kwargs)
        ids, codes = IdMap.factorize(pa.concat_arrays([inter.user_ids.keys, inter.item_ids.keys]), name=name)
        to_node_src, to_node_dst = codes[:inter.n_users], codes[inter.n_users:]
        return cls.from_edges(to_node_src[inter.user], to_node_dst[inter.item], inter.weight,
                              n_nodes=len(ids), directed=directed, ids=ids, name=name)

    @classmethod
    def from_interactions(cls, interactions, *, weighted: bool = True, events=None) -> "Graph":
        """User-item bipartite graph; `events` keeps only those event types (names)."""
        inter = interactions
        if events is not None:
            if inter.event is None:
                raise ValueError("events= needs interactions with an event column")
            codes = inter.event_ids.lookup(list(events))
            if codes.unknown:
                raise ValueError(f"unknown event types {codes.unknown}")
            inter = inter.select(np.isin(inter.event, codes.internal))
        nu = inter.n_users
        w = inter.weight if (weighted and inter.weight is not None) else None
        n = nu + inter.n_items
        w = np.ones(len(inter), np.float32) if w is None else w
        adjacency = _adjacency(inter.user.astype(np.int64), nu + inter.item.astype(np.int64), w, n, False)
        node_type = np.concatenate([np.zeros(nu, np.int8), np.ones(inter.n_items, np.int8)])
        names = [inter.user_ids.name or "user", inter.item_ids.name or "item"]
        if names[0] == names[1]:
            names = ["user", "item"]
        return cls(adjacency, node_type, names, {names[0]: inter.user_ids, names[1]: inter.item_ids},
                   meta={"directed": False, "events": events})

    @classmethod
    def from_columns(cls, table, spec: list[str], *, expansion: str = "clique",
                     max_clique: int = 64, weight: str | None = None) -> "Graph":
        """Hyperedge graph from a table (pyarrow Table or dict of arrays), pycleora-style.

        spec: column specs such as ["transient::user", "complex::reflexive::items"].
        expansion: "clique" (with star for rows over `max_clique` members) or "star".
        weight: optional numeric column, the weight of each row's edges.
        """
        if expansion not in ("clique", "star"):
            raise ValueError(f"expansion must be 'clique' or 'star', got {expansion!r}")
        table = table if isinstance(table, pa.Table) else pa.table(table)
        columns = [_parse_spec(s, table.column_names) for s in spec]
        n_rows = table.num_rows
        # members of every row as CSR over (row, global node), built column by column
        member_rows, member_nodes, member_col = [], [], []
        type_ids, offset = {}, 0
        for c, col in enumerate(columns):
            values, rows = _column_entities(table.column(col["name"]), col["complex"])
            ids, codes = IdMap.factorize(values, name=col["name"])
            type_ids[col["name"]] = ids
            member_rows.append(rows)
            member_nodes.append(codes.astype(np.int64) + offset)
            member_col.append(np.full(len(rows), c, np.int8))
            offset += len(ids)
        rows = np.concatenate(member_rows)
        order = np.argsort(rows, kind="stable")
        rows, nodes, col_of = rows[order], np.concatenate(member_nodes)[order], np.concatenate(member_col)[order]
        size = np.bincount(rows, minlength=n_rows)
        row_w = (np.ones(n_rows, np.float32) if weight is None
                 else table.column(weight).to_numpy(zero_copy_only=False).astype(np.float32))
        use_star = (size > max_clique) if expansion == "clique" else np.ones(n_rows, bool)
        reflexive = np.array([col["reflexive"] for col in columns])
        # clique part
        in_clique = ~use_star[rows]
        a, b = _pairs_within_rows(rows[in_clique])
        ci, cj = col_of[in_clique][a], col_of[in_clique][b]
        ok = (ci != cj) | reflexive[ci]
        src, dst = nodes[in_clique][a][ok], nodes[in_clique][b][ok]
        w = row_w[rows[in_clique][a][ok]]
        # star part: one transient hub per star row
        star_rows = np.flatnonzero(use_star)
        n_hubs = len(star_rows)
        if n_hubs:
            hub_of_row = np.full(n_rows, -1, np.int64)
            hub_of_row[star_rows] = offset + np.arange(n_hubs)
            sel = use_star[rows]
            src = np.concatenate([src, hub_of_row[rows[sel]]])
            dst = np.concatenate([dst, nodes[sel]])
            w = np.concatenate([w, row_w[rows[sel]]])
        n = offset + n_hubs
        adjacency = _adjacency(src, dst, w, n, False)
        node_type = np.concatenate([np.full(len(type_ids[col["name"]]), c, np.int8)
                                    for c, col in enumerate(columns)] + [np.full(n_hubs, len(columns), np.int8)])
        names = [col["name"] for col in columns]
        transient = {col["name"] for col in columns if col["transient"]}
        if n_hubs:
            names.append("_hyperedge")
            type_ids["_hyperedge"] = IdMap(star_rows, name="_hyperedge")
            transient.add("_hyperedge")
        return cls(adjacency, node_type, names, type_ids, transient,
                   meta={"directed": False, "spec": spec, "expansion": expansion,
                         "star_rows": int(n_hubs), "max_clique": max_clique})


def _ipc_bytes(ids: IdMap) -> np.ndarray:
    """An id map as the uint8 bytes of a one-column Arrow IPC stream (the column named as the map)."""
    table = pa.table({ids.name: ids.keys})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return np.frombuffer(sink.getvalue(), dtype=np.uint8)


def _from_ipc_bytes(data: np.ndarray) -> IdMap:
    table = pa.ipc.open_stream(pa.py_buffer(np.ascontiguousarray(data, dtype=np.uint8).tobytes())).read_all()
    return IdMap(table.column(0), name=table.column_names[0])


def _json_value(value):
    """JSON fallback for graph metadata: numpy scalars and arrays, sets and tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, set, frozenset)):
        return sorted(value) if isinstance(value, (set, frozenset)) else value.tolist()
    raise TypeError(f"graph metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _adjacency(src, dst, w, n, directed) -> sp.csr_matrix:
    """(n, n) canonical CSR; undirected edges stored both ways (self-loops once), duplicates summed."""
    from sketchrec.graph.kernels import edges_to_csr
    indptr, indices, data = edges_to_csr(src, dst, w, n, symmetric=not directed)
    m = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    m.has_canonical_format = True
    return m


def _parse_spec(spec: str, available: list[str]) -> dict:
    *mods, name = spec.split("::")
    unknown = set(mods) - {"complex", "reflexive", "transient"}
    if unknown:
        raise ValueError(f"column spec {spec!r}: unknown modifier(s) {sorted(unknown)}")
    if name not in available:
        raise ValueError(f"column spec {spec!r}: no column {name!r}; the table has {available}")
    if "reflexive" in mods and "complex" not in mods:
        raise ValueError(f"column spec {spec!r}: reflexive needs a complex column")
    return {"name": name, "complex": "complex" in mods, "reflexive": "reflexive" in mods,
            "transient": "transient" in mods}


def _column_entities(column, complex_: bool):
    """(values, row index of each value); complex cells are lists or space-separated text."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not complex_:
        valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
        return column.filter(pa.array(valid)), np.flatnonzero(valid)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.split_pattern(pc.utf8_trim_whitespace(column), " ")
    flat = pc.list_flatten(column)
    rows = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64)
    keep = pc.and_(pc.is_valid(flat), pc.not_equal(pc.cast(flat, pa.string()), "")) \
        if pa.types.is_string(flat.type) else pc.is_valid(flat)
    keep = pc.fill_null(keep, False).to_numpy(zero_copy_only=False)
    return flat.filter(pa.array(keep)), rows[keep]


def _pairs_within_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All position pairs (a, b), a < b, inside each run of equal `rows` (sorted). Vectorised."""
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    pos = np.arange(len(rows)) - np.repeat(starts, sizes)          # position inside the run
    after = np.repeat(sizes, sizes) - 1 - pos                       # members after this one
    a = np.repeat(np.arange(len(rows)), after)
    first_b = np.repeat(np.cumsum(after) - after, after)
    b = a + 1 + (np.arange(len(a)) - first_b)
    return a, b

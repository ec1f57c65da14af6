"""SR-GNN / TAGNN: vectorised session graphs against a per-session reference, learning a rule,
checkpoint resume, persistence."""

from unittest import mock

import numpy as np
import pytest
import torch

from sketchrec.data.sessions import Sessions
from sketchrec.eval.protocols import evaluate_next_item
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models.base import Recommender
from sketchrec.models._table_adam import TableAdam
from sketchrec.models.srgnn import (SRGNN, TAGNN, GatedGraphNet, ItemTable, PackedTargetAttention,
                                   SoftmaxCrossEntropy, TargetAttention, session_graphs, softmax_cross_entropy)


def reference_graph(seq):
    """SR-GNN's per-session construction (as in its published preprocessing), written plainly."""
    nodes = sorted(set(seq))
    n = len(nodes)
    a = np.zeros((n, n))
    for u, v in zip(seq[:-1], seq[1:]):
        a[nodes.index(u), nodes.index(v)] = 1
    col, row = a.sum(0), a.sum(1)
    a_in = np.divide(a, col, out=np.zeros_like(a), where=col > 0).T
    a_out = np.divide(a.T, row, out=np.zeros_like(a), where=row > 0).T
    return nodes, [nodes.index(i) for i in seq], np.concatenate([a_in, a_out], axis=1)


def test_session_graphs_match_reference():
    rows = [[3, 5, 3, 7], [2], [9, 9, 1, 5, 1]]
    g = session_graphs(Sessions.from_lists(rows, n_items=10))
    for b, seq in enumerate(rows):
        nodes, ref_alias, ref_adj = reference_graph(seq)
        n = len(nodes)
        assert g.node_items[b, :n].tolist() == nodes and np.all(g.node_items[b, n:] == 10)
        assert g.alias[b, :len(seq)].tolist() == ref_alias and g.click_mask[b].sum() == len(seq)
        assert g.node_clicks[b, :n].tolist() == [seq.count(i) for i in nodes]
        w = g.node_items.shape[1]
        np.testing.assert_allclose(g.adjacency[b][:n, :n], ref_adj[:, :n])
        np.testing.assert_allclose(g.adjacency[b][:n, w:w + n], ref_adj[:, n:])
        assert np.all(g.adjacency[b][n:] == 0)


def rule_data(n_items=30, n=400, seed=0):
    starts = np.random.default_rng(seed).integers(0, n_items, n)
    rows = ((starts[:, None] + np.arange(5)[None, :]) % n_items).tolist()
    return Sessions.from_lists(rows, n_items=n_items)


@pytest.mark.parametrize("cls", [SRGNN, TAGNN])
def test_learns_next_item_rule(cls):
    prefixes = Sessions.from_lists([[4, 5, 6], [28, 29], [12]], n_items=30)
    targets = np.array([7, 0, 13])
    model = cls(hidden=32, epochs=8, batch_size=50, lr=5e-3, progress=False, threads=1).fit(rule_data())
    metrics, _ = evaluate_next_item(model, prefixes, targets, ks=(1,), progress=False)
    assert metrics["HR@1"] == 1.0
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    assert set(model.history_[0]) >= {"graphs_s", "forward_backward_s", "optimiser_s"}


def test_tagnn_node_attention_equals_click_attention():
    """Softmax over a session's clicks == softmax over its nodes with log(click count) added."""
    torch.manual_seed(0)
    net = GatedGraphNet(12, hidden=8, target_aware=True).eval()
    seq = [3, 5, 3, 3, 7]
    g = session_graphs(Sessions.from_lists([seq], n_items=12)).tensors()
    with torch.no_grad():
        scores = net(*g)[0]
        h = net.node_states(g[0], g[3])[0]
        s = net.session_vectors(*g)[0]
        clicks = h[g[1][0]]                                    # (L, d): one state per click
        items = net.embedding.weight
        beta = torch.softmax(net.target_att(clicks) @ items.T, dim=0)   # (L, N)
        expected = s @ items.T + (beta * (clicks @ items.T)).sum(0)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)


def test_chunked_target_attention_matches_autograd():
    """The item-chunked TargetAttention gives plain autograd's output and gradients, padded
    nodes (bias -inf) included, across several chunks."""
    torch.manual_seed(0)
    q, h = torch.randn(7, 5, 6, requires_grad=True), torch.randn(7, 5, 6, requires_grad=True)
    items = torch.randn(1000, 6, requires_grad=True)
    bias = torch.zeros(7, 5)
    bias[:, 3:] = -torch.inf
    bias[0, 1] = 0.7
    weights = torch.randn(7, 1000)
    plain = (torch.softmax(q @ items.T + bias.unsqueeze(2), dim=1) * (h @ items.T)).sum(1)
    with mock.patch.object(TargetAttention, "CHUNK_ELEMENTS", 600):       # 256-item chunks
        chunked = TargetAttention.apply(q, h, items, bias)
        grads = torch.autograd.grad((chunked * weights).sum(), [q, h, items])
    torch.testing.assert_close(chunked, plain)
    for got, want in zip(grads, torch.autograd.grad((plain * weights).sum(), [q, h, items])):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert torch.all(grads[0][:, 3:] == 0)              # padded nodes get no gradient


def test_validation_keeps_best_epoch_and_stops_early():
    train = rule_data()
    valid = (Sessions.from_lists([[4, 5, 6], [10, 11]], n_items=30), np.array([7, 12]))
    model = SRGNN(hidden=16, epochs=30, batch_size=50, lr=1e-2, patience=2, progress=False,
                  threads=1).fit(train, validation=NextItemValidation(*valid))
    mrr = [r["valid_MRR@20"] for r in model.history_]
    assert len(mrr) < 30                                       # stopped early once MRR stayed flat
    assert model.best_epoch_ == int(np.argmax(mrr)) + 1
    got, _ = evaluate_next_item(model, *valid, progress=False)
    assert got["MRR@20"] == pytest.approx(max(mrr))


def test_stop_on_loss_keeps_the_lowest_validation_loss_epoch():
    train = rule_data()
    valid = (Sessions.from_lists([[4, 5, 6], [10, 11]], n_items=30), np.array([7, 12]))
    model = SRGNN(hidden=16, epochs=8, batch_size=50, lr=1e-2, patience=2, stop_on="loss", progress=False,
                  threads=1).fit(train, validation=NextItemValidation(*valid, loss=True))
    losses = [r["valid_loss"] for r in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    scores = torch.from_numpy(model.score(valid[0]))
    manual = float(torch.nn.functional.cross_entropy(scores, torch.from_numpy(valid[1])))
    assert manual == pytest.approx(min(losses), rel=1e-5)      # the kept weights are that epoch's
    with pytest.raises(ValueError, match="stop_on"):
        SRGNN.check_params({"stop_on": "hr"})
    with pytest.raises(ValueError, match="loss=True"):          # a validation without the loss to stop on
        SRGNN(stop_on="loss", progress=False).fit(train, validation=NextItemValidation(*valid))


def test_init_std_draws_normal_weights_else_uniform():
    uniform = torch.cat([p.detach().ravel() for p in GatedGraphNet(500, hidden=100).parameters()])
    assert float(uniform.abs().max()) <= 0.1 and float(uniform.std()) == pytest.approx(0.1 / np.sqrt(3), rel=0.02)
    normal = torch.cat([p.detach().ravel() for p in GatedGraphNet(500, hidden=100, init_std=0.1).parameters()])
    assert float(normal.mean()) == pytest.approx(0, abs=1e-3) and float(normal.std()) == pytest.approx(0.1, rel=0.01)
    assert float(normal.abs().max()) > 0.3


@pytest.mark.parametrize("bf16", [False, True])
def test_checkpoint_resume_matches_uninterrupted_run(tmp_path, bf16):
    """Also under bf16, where TableAdam's bfloat16 table copy must be rebuilt from the resumed weights."""
    train = rule_data()
    kw = dict(hidden=16, epochs=3, batch_size=64, lr=5e-3, bf16=bf16, progress=False, threads=1)
    full = SRGNN(**kw).fit(train)
    path = tmp_path / "srgnn.ckpt.npz"

    class Stop(Exception):
        pass

    def kill_after_first(epoch, model, row):
        if epoch == 1:
            raise Stop
    with pytest.raises(Stop):
        SRGNN(**kw).fit(train, checkpoint=str(path), callback=kill_after_first)
    resumed = SRGNN(**kw).fit(train, checkpoint=str(path))
    assert [r["loss"] for r in resumed.history_] == pytest.approx([r["loss"] for r in full.history_])
    np.testing.assert_allclose(resumed.item_vectors(), full.item_vectors(), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="other settings"):
        SRGNN(**{**kw, "hidden": 8}).fit(train, checkpoint=str(path))


def test_save_load_round_trip(tmp_path):
    model = TAGNN(hidden=8, epochs=1, progress=False, threads=1).fit(rule_data())
    model.save(tmp_path / "m.npz")
    back = Recommender.load(tmp_path / "m.npz")
    assert isinstance(back, TAGNN)
    rows = Sessions.from_lists([[1, 2], [5]], n_items=30)
    np.testing.assert_allclose(back.score(rows), model.score(rows), rtol=1e-6)
    assert back.session_vectors(rows).shape == (2, 8)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="two or more"):
        SRGNN(progress=False).fit(Sessions.from_lists([[1], [2]], n_items=3))


def test_clustered_sessions_route_and_fine_tune():
    from sketchrec.models.session_clusters import ClusteredSessions, _pairs_as_sessions
    pairs = _pairs_as_sessions(Sessions.from_lists([[1, 2], [3]], n_items=5), np.array([4, 0]))
    assert pairs.to_lists() == [[1, 2, 4], [3, 0]]
    train = rule_data()
    base = SRGNN(hidden=16, epochs=3, batch_size=50, lr=5e-3, progress=False, threads=1).fit(train)
    valid_rows = rule_data(n=60, seed=1)
    from sketchrec.data.sessions import expand_prefixes
    valid = expand_prefixes(valid_rows)
    model = ClusteredSessions(n_clusters=2, min_cluster_prefixes=10, fine_tune_lr=1e-3,
                              progress=False).fit(train, base=base, validation=NextItemValidation(*valid))
    assert len(model.models_) == 2 and model.cluster_sizes_.sum() == 1600
    route = model.route(valid[0])
    assert set(np.unique(route)) <= {0, 1}
    scores = model.score(valid[0].take(np.arange(5)))
    for r in range(5):
        np.testing.assert_allclose(scores[r], model.models_[route[r]].score(valid[0].take([r]))[0], rtol=1e-4, atol=1e-5)


def test_padded_nodes_start_as_exact_zeros():
    """Padding must not reach the network as anything but zeros (no padding row to decay into
    denormals), and padding a batch must not change a session's scores."""
    model = SRGNN(hidden=8, epochs=2, progress=False, threads=1).fit(rule_data())
    net = model.net_
    assert net.embedding.weight.shape[0] == model.n_items_
    short, long_ = [4, 5], [1, 2, 3, 1, 6, 7, 8]
    g = session_graphs(Sessions.from_lists([short, long_], n_items=model.n_items_)).tensors()
    with torch.no_grad():
        alone = net(*session_graphs(Sessions.from_lists([short], n_items=model.n_items_)).tensors())[0]
        padded = net(*g)[0]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-5)


def test_bf16_target_attention_is_close_and_scoring_stays_float32():
    """bf16 GEMM operands change the attention term and its gradients by bf16 rounding only;
    a TAGNN trained with them still scores in float32 (eval mode gives the float32 result)."""
    torch.manual_seed(0)
    q, h = torch.randn(7, 5, 16, requires_grad=True), torch.randn(7, 5, 16, requires_grad=True)
    items = torch.randn(3000, 16, requires_grad=True)
    bias = torch.zeros(7, 5)
    bias[:, 3:] = -torch.inf
    weights = torch.randn(7, 3000)
    exact = TargetAttention.apply(q, h, items, bias, False)
    with mock.patch.object(TargetAttention, "CHUNK_ELEMENTS_BF16", 2000):     # several chunks
        rounded = TargetAttention.apply(q, h, items, bias, True)
        grads = torch.autograd.grad((rounded * weights).sum(), [q, h, items])
    want = torch.autograd.grad((exact * weights).sum(), [q, h, items])
    assert not torch.equal(rounded, exact)                     # the bf16 path really ran
    torch.testing.assert_close(rounded, exact, rtol=0.05, atol=0.05 * exact.abs().max().item())
    for got, ref in zip(grads, want):
        assert torch.linalg.norm(got - ref) < 0.02 * torch.linalg.norm(ref)
    train = rule_data()
    model = TAGNN(hidden=16, epochs=2, batch_size=50, bf16_attention=True, progress=False, threads=1).fit(train)
    prefixes = Sessions.from_lists([[4, 5, 6], [10, 11]], n_items=30)
    net = model.net_
    with torch.no_grad():
        net.bf16_attention = False
        fp32 = net(*session_graphs(prefixes, model.max_len).tensors()).numpy()
    np.testing.assert_array_equal(model.score(prefixes), fp32)


def test_packed_bf16_attention_matches_the_padded_path():
    """Packed nodes + numba kernels give the padded bf16 path's output (same bf16 logits, float32
    softmax: equal to float32 rounding) and its gradients (to the bf16 rounding of the gradient
    GEMMs' outputs), across several item chunks; sessions of one to five nodes, repeated clicks."""
    torch.manual_seed(0)
    q, h = torch.randn(7, 5, 16, requires_grad=True), torch.randn(7, 5, 16, requires_grad=True)
    items = torch.randn(3000, 16, requires_grad=True)
    clicks = torch.zeros(7, 5)
    for b in range(7):
        clicks[b, :1 + b % 5] = 1.0
    clicks[1, 0], clicks[4, 2] = 3.0, 2.0
    bias = torch.where(clicks > 0, torch.log(clicks.clamp(min=1)), torch.full_like(clicks, -torch.inf))
    weights = torch.randn(7, 3000)
    real = clicks > 0
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), real.sum(1).cumsum(0)])
    padded = TargetAttention.apply(q, h, items, bias, True)
    want = torch.autograd.grad((padded * weights).sum(), [q, h, items])
    for keep in (1 << 30, 0):                          # logits kept for backward, or recomputed
        with mock.patch.object(TargetAttention, "CHUNK_ELEMENTS_BF16", 20000), \
             mock.patch.object(PackedTargetAttention, "KEEP_BYTES", keep):
            packed = PackedTargetAttention.apply(q[real], h[real], items, bias[real], starts)
            grads = torch.autograd.grad((packed * weights).sum(), [q, h, items])
        torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)
        for got, ref in zip(grads, want):
            assert torch.linalg.norm(got - ref) < 0.01 * torch.linalg.norm(ref)
        assert torch.all(grads[0][~real] == 0) and torch.all(grads[1][~real] == 0)


def test_attention_kernel_exp_is_accurate():
    """The kernels' vectorised exp over the whole range a softmax sees (x <= 0)."""
    from sketchrec.models._attention_kernels import _exp_nonpositive
    x = -np.concatenate([np.linspace(0, 30, 20001), [60.0, 86.0, 87.0, 100.0, 1e30]]).astype(np.float32)
    out, scratch = np.empty_like(x), np.empty_like(x)
    _exp_nonpositive(x, out, scratch)
    want = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(out[:-3], want[:-3], rtol=5e-7, atol=0)
    assert np.all(out[-3:] < 2e-38) and np.all(out >= 0)     # clamped at -87: tiny, never NaN / inf


def test_fused_softmax_cross_entropy_equals_torch_on_bf16_logits():
    """The numba loss over bfloat16 logits: torch's cross-entropy of the widened logits, and its
    gradient as autocast would give it (float32 softmax - onehot, rounded to bfloat16); a row
    length that is no multiple of the kernels' 16 lanes, a huge and a tiny logit, a row of negatives."""
    torch.manual_seed(0)
    logits = (torch.randn(9, 5003) * 4).bfloat16()
    logits[0, 17], logits[1, 5002], logits[2, 0] = 80.0, -90.0, 30.0
    logits[3] = -logits[3].abs() - 1.0                      # a row of negative logits only
    logits.requires_grad_()
    targets = torch.tensor([17, 5002, 3, 0, 1, 2, 4999, 5000, 8])
    fused = SoftmaxCrossEntropy.apply(logits, targets)
    (got,) = torch.autograd.grad(2.5 * fused, [logits])
    want = torch.nn.functional.cross_entropy(logits.float(), targets)
    (ref,) = torch.autograd.grad(2.5 * want, [logits])
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(fused, want, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(got.float(), ref.float(), rtol=0.01, atol=1e-6)
    (unit,) = torch.autograd.grad(SoftmaxCrossEntropy.apply(logits, targets), [logits])   # d loss, unscaled
    torch.testing.assert_close(unit.float(), ref.float() / 2.5, rtol=0.01, atol=1e-6)
    with torch.no_grad():                                       # no gradient wanted: log-sum-exp only
        torch.testing.assert_close(SoftmaxCrossEntropy.apply(logits, targets), want.detach(), rtol=1e-6, atol=1e-5)
    with pytest.raises(IndexError):
        SoftmaxCrossEntropy.apply(logits, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 5003]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_item_table_gives_the_two_uses_one_gradient(dtype):
    """ItemTable = the table cast to `dtype` plus a row lookup, with the gradient autograd gives
    the two separate uses (rows looked up more than once, and rows never looked up)."""
    torch.manual_seed(0)
    weight = torch.randn(50, 8, requires_grad=True)
    index = torch.tensor([[3, 3, 7], [0, 49, 3]])
    scale, row_scale = torch.randn(50, 8), torch.randn(2, 3, 8)
    table, rows = ItemTable.apply(weight, index, dtype)
    assert table.dtype == dtype and torch.equal(rows, weight.detach()[index])
    (got,) = torch.autograd.grad((table.float() * scale).sum() + (rows * row_scale).sum(), [weight])
    (want,) = torch.autograd.grad((weight.to(dtype).float() * scale).sum() + (weight[index] * row_scale).sum(),
                                  [weight])
    torch.testing.assert_close(got, want)


def test_training_forward_scores_like_eval():
    """The training path (ItemTable, fused loss under bf16 autocast) scores as the plain eval path."""
    model = SRGNN(hidden=16, epochs=1, progress=False, threads=1).fit(rule_data())
    net = model.net_
    g = session_graphs(Sessions.from_lists([[4, 5, 6], [10, 11], [3]], n_items=30)).tensors()
    with torch.no_grad():
        plain = net(*g)
    net.train()
    torch.testing.assert_close(net(*g).detach(), plain)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = net(*g)
    assert rounded.dtype == torch.bfloat16
    torch.testing.assert_close(rounded.detach().float(), plain, rtol=0.05, atol=0.05 * plain.abs().max().item())


def test_table_adam_steps_the_table_at_the_scheduled_lr_after_load_state_dict():
    """A resumed checkpoint loads the optimiser's state_dict, which replaces its group dicts; the
    scheduler then sets the lr of the new ones, and the table's step must use it (it kept the
    first lr once: a resumed bf16 SR-GNN trained its item table at the undecayed lr)."""
    table = torch.nn.Parameter(torch.ones(4, 3))
    opt = TableAdam([table], table, lr=1.0)
    saved = torch.nn.Parameter(torch.ones(4, 3))
    opt.load_state_dict(TableAdam([saved], saved, lr=1.0).state_dict())
    torch.optim.lr_scheduler.StepLR(opt, 1, 0.0).step()               # lr 1.0 -> 0.0
    assert opt.param_groups[0]["lr"] == 0.0
    opt.accept(torch.ones(4, 3).bfloat16(), torch.zeros(1, dtype=torch.long), None)
    opt.step()
    assert torch.equal(table.detach(), torch.ones(4, 3))                # lr 0: the table stays


def test_table_adam_steps_the_table_as_torch_adam_does():
    """TableAdam's numba step over the table (bfloat16 gradient plus looked-up rows' gradients,
    a table width that is no multiple of its lanes, rows beyond one task's 256) equals torch's
    fused Adam on the float32 sum of both; its bfloat16 copy is the rounded table; the other
    parameters and the state_dict are torch Adam's."""
    torch.manual_seed(0)
    table, other = torch.nn.Parameter(torch.randn(1000, 37)), torch.nn.Parameter(torch.randn(5))
    ref_table, ref_other = (torch.nn.Parameter(p.detach().clone()) for p in (table, other))
    ours = TableAdam([table, other], table, lr=1e-2, weight_decay=1e-3)
    ref = torch.optim.Adam([ref_table, ref_other], lr=1e-2, weight_decay=1e-3, fused=True)
    for _ in range(4):
        grad, index, rows, g_other = torch.randn(1000, 37).bfloat16(), torch.randint(0, 1000, (7, 3)), \
            torch.randn(7, 3, 37), torch.randn(5)
        ours.zero_grad()
        ours.accept(grad, index, rows)
        other.grad = g_other.clone()
        ours.step()
        ref_table.grad = grad.float().index_add(0, index.reshape(-1), rows.reshape(-1, 37))
        ref_other.grad = g_other.clone()
        ref.step()
        torch.testing.assert_close(table.detach(), ref_table.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(other.detach(), ref_other.detach())
        assert torch.equal(ours.table_copy(), table.detach().bfloat16())
    assert set(ours.state_dict()["state"][0]) == set(ref.state_dict()["state"][0])
    with torch.no_grad():
        table.mul_(2.0)                       # changed behind the optimiser's back: the copy follows
    assert torch.equal(ours.table_copy(), table.detach().bfloat16())
    with pytest.raises(TypeError, match="bfloat16"):
        ours.accept(grad.float(), index, rows)            # a float32 gradient belongs in .grad
    ours.accept(grad, index, rows)
    with pytest.raises(RuntimeError, match="before step"):
        ours.accept(grad, index, rows)


def test_bf16_training_step_with_table_adam_equals_plain_adam():
    """One bf16 training step of the network through ItemTable + TableAdam gives the weights the
    same step gives through ItemTable's float32 gradient and torch's fused Adam."""
    torch.manual_seed(0)
    g = session_graphs(Sessions.from_lists([[4, 5, 6, 4], [10, 11], [3], [7, 8, 9]], n_items=300)).tensors()
    targets = torch.tensor([7, 12, 4, 10])
    nets = [GatedGraphNet(300, 16), GatedGraphNet(300, 16)]
    nets[1].load_state_dict(nets[0].state_dict())
    ours = TableAdam(nets[0].parameters(), nets[0].embedding.weight, lr=1e-2, weight_decay=1e-5)
    ref = torch.optim.Adam(nets[1].parameters(), lr=1e-2, weight_decay=1e-5, fused=True)
    nets[0].table_optimiser = ours
    for _ in range(2):
        for net, opt in zip(nets, (ours, ref)):
            net.train()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                scores = net(*g)
            opt.zero_grad()
            softmax_cross_entropy(scores, targets).backward()
            opt.step()
    assert nets[0].embedding.weight.grad is None           # the table's gradient went to TableAdam
    for (name, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("cls", [SRGNN, TAGNN])
def test_padding_to_a_multiple_changes_shapes_not_scores(cls):
    """Nodes and clicks padded up to a multiple of 8 (SR-GNN's training and scoring batches):
    the padded nodes and clicks are masked everywhere, so the scores and session vectors stay."""
    model = cls(hidden=16, epochs=1, progress=False, threads=1).fit(rule_data())
    rows = Sessions.from_lists([[4, 5, 6, 4, 9], [10, 11], [3]], n_items=30)
    plain, padded = session_graphs(rows), session_graphs(rows, multiple=8)
    assert plain.adjacency.shape == (3, 4, 8) and padded.adjacency.shape == (3, 8, 16)
    assert plain.alias.shape == (3, 5) and padded.alias.shape == (3, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.net_(*padded.tensors()), model.net_(*plain.tensors()))
        torch.testing.assert_close(model.net_.session_vectors(*padded.tensors()),
                                   model.net_.session_vectors(*plain.tensors()))


def test_clustered_sessions_save_load_gives_equal_scores(tmp_path):
    """The mixture's arrays, the base and each fine-tuned model are saved (before, only n_items_
    was: the loaded model failed in score)."""
    from sketchrec.data.sessions import expand_prefixes
    from sketchrec.models.session_clusters import ClusteredSessions
    train = rule_data()
    base = SRGNN(hidden=16, epochs=2, batch_size=50, lr=5e-3, progress=False, threads=1).fit(train)
    valid = NextItemValidation(*expand_prefixes(rule_data(n=60, seed=1)))
    model = ClusteredSessions(n_clusters=3, min_cluster_prefixes=500, fine_tune_lr=1e-3,
                              progress=False).fit(train, base=base, validation=valid)
    assert 0 < model.fine_tuned_.sum() < 3                       # both kinds of cluster are saved
    model.save(tmp_path / "clustered.npz")
    back = Recommender.load(tmp_path / "clustered.npz")
    assert isinstance(back, ClusteredSessions) and back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.route(valid.prefixes), model.route(valid.prefixes))
    np.testing.assert_array_equal(back.score(valid.prefixes), model.score(valid.prefixes))
    assert all((m is back.base_) == (not tuned) for m, tuned in zip(back.models_, back.fine_tuned_))

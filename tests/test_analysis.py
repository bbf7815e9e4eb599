"""The report's statistics on hand-made results, where the right answer is known."""

import math

import pytest
import torch

from mnist_scratch import analysis as A
from mnist_scratch import tables


def run(hidden=(30,), seed=0, valid_acc=0.9, valid_loss=0.3, **extra):
    cfg = {"hidden": list(hidden), "seed": seed, "lr": 0.1, "epochs": 3, "objective": "cross-entropy",
           "weight_decay": 0.0, "bias": True}
    final = {s: {"acc": valid_acc, "loss": valid_loss} for s in ("train", "valid", "test")}
    return {"config": {**cfg, **extra}, "architecture": "784-" + "-".join(map(str, [*hidden, 10])),
            "diverged": False, "final": final,
            "history": {"train_loss": [2.3, 1.0, 0.5, 0.4], "valid_loss": [2.3, 1.1, 0.6, 0.5]}}


def test_spread_and_formatting():
    assert A.spread([0.9]) == (0.9, 0.0)
    m, s = A.spread([0.90, 0.92])
    assert m == pytest.approx(0.91) and s == pytest.approx(math.sqrt(2) * 0.01)
    assert A.pm([0.90, 0.92]) == "91.0 ± 1.4"
    assert A.pct(0.12345, 2) == "12.35%"


def test_signed_difference_has_no_negative_zero():
    assert A.signed(0.0064) == "+0.64"
    assert A.signed(-0.0001) == "-0.01"
    assert A.signed(-0.00004) == "0.00"  # rounds to zero: no '-0.00'
    assert A.signed(0.00004) == "0.00"
    assert A.signed(-0.5, scale=1, digits=1) == "-0.5"


def test_final_skips_diverged_runs():
    bad = {**run(valid_acc=0.1), "diverged": True, "final": None}
    assert A.final([run(valid_acc=0.8), bad], "valid", "acc") == [0.8]


def test_grouping_by_model_and_setting():
    runs = [run((), 0), run((30,), 0), run((), 1), run((30,), 1, weight_decay=0.01)]
    assert list(A.by_model(runs)) == ["logistic regression", "784-30-10 ReLU"]
    groups = A.by(runs, "hidden", "weight_decay")
    assert [len(g) for g in groups.values()] == [2, 1, 1]
    assert list(A.families(runs, "hidden")) == ["784-h-10 ReLU"]


def test_mean_curves_average_seeds_epoch_by_epoch():
    a, b = run(seed=0), run(seed=1)
    b["history"]["valid_loss"] = [2.3, 0.9, 0.4, 0.3]
    mean, std = A.mean_curves([a, b], "valid_loss")
    assert mean == pytest.approx([2.3, 1.0, 0.5, 0.4])
    assert std[0] == 0 and std[1] == pytest.approx(math.sqrt(0.02))


def test_error_distance_and_shrinkage_of_known_predictions():
    labels = torch.tensor([0, 1, 4, 9, 9, 5])
    r = {"valid_pred": [0, 2, 4, 8, 4, 5], "valid_output": [0.0, 1.0, 4.0, 9.0, 9.0, 5.0]}
    dist = A.error_distance(r, labels)  # wrong: 1->2 (1), 9->8 (1), 9->4 (5)
    assert dist["off_by_one"] == pytest.approx(2 / 3) and dist["mean_distance"] == pytest.approx(7 / 3)
    perfect = A.shrinkage(r, labels)
    assert perfect["slope"] == pytest.approx(1.0) and perfect["mean_for_9"] == 9.0
    hedged = A.shrinkage({"valid_output": [4.5 + 0.5 * (y - 4.5) for y in labels.tolist()]}, labels)
    assert hedged["slope"] == pytest.approx(0.5)


def test_in_between_finds_hedged_look_alikes_closest_first():
    labels = torch.tensor([4, 9, 4, 3, 7, 2])
    r = {"valid_output": [6.4, 6.9, 4.1, 5.5, 4.2, 5.5]}
    found = A.in_between(r, labels)
    assert [f["index"] for f in found] == [3, 0, 4, 1]  # gaps 0.0 (3/8), 0.1 (4/9), 0.2 (1/7), 0.4 (4/9)
    assert [f["index"] for f in A.in_between(r, labels, ((4, 9),))] == [0, 1]


def test_best_mse_runs_picks_lowest_mean_validation_loss_and_skips_divergence():
    runs = [run(objective="mse-digit", lr=0.01, valid_loss=2.0), run(objective="mse-digit", lr=0.03, valid_loss=1.5),
            {**run(objective="mse-digit", lr=0.1), "diverged": True, "final": None}]
    best = A.best_mse_runs(runs)
    assert best["mse-digit"][0]["config"]["lr"] == 0.03


def test_markdown_table_shape_and_column_widths():
    text = tables.markdown(["a", "b"], [[1, 2], [3, 4]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and len(lines) == 4
    left, right = lines[1].strip("| ").split(" | ")
    assert left.startswith(":") and right.endswith(":") and not right.startswith(":")
    wide = tables.markdown(["model", "acc"], [["784-30-10", "93.94 ± 0.33 percent of them"]]).splitlines()[1]
    short, long = (len(cell) for cell in wide.strip("| ").split(" | "))
    assert long > 2 * short  # dashes in proportion to the longest cell: pandoc sizes wide tables by them
    bold = tables.markdown(["interval", "x"], [["**+2.77, +3.64**", "5 of 5"]]).splitlines()[1]
    assert [len(cell) for cell in bold.strip("| ").split(" | ")] == [len("+2.77, +3.64") + 4, len("5 of 5") + 4]  # bold markers do not count


def test_second_choice_right_counts_only_wrong_predictions():
    labels = torch.tensor([3, 5, 8, 1])
    r = {"valid_pred": [3, 6, 9, 7], "valid_second": [0, 5, 2, 1]}  # wrong: 5 (2nd right), 8 (no), 1 (2nd right)
    assert A.second_choice_right(r, labels) == pytest.approx(2 / 3)


# --- statistics ------------------------------------------------------------------------------------


def test_interval_is_the_t_interval_and_its_verdict():
    wide = A.interval([0.01, 0.02, 0.03])  # mean 0.02, sd 0.01, t(2) = 4.303
    assert wide["mean"] == pytest.approx(0.02)
    assert wide["hi"] - wide["mean"] == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-5)
    assert wide["verdict"] == "within noise" and wide["positive"] == 3
    tight = A.interval([0.010, 0.011, 0.009, 0.010, 0.010])
    assert tight["lo"] > 0 and tight["verdict"] == "supported"
    assert A.interval([-0.010, -0.011, -0.009])["verdict"] == "supported"  # either sign


def test_paired_matches_seeds_and_skips_divergence():
    a = [run(seed=0, valid_acc=0.91), run(seed=1, valid_acc=0.93), run(seed=2, valid_acc=0.95)]
    b = [run(seed=1, valid_acc=0.92), run(seed=0, valid_acc=0.90), {**run(seed=2), "diverged": True, "final": None}]
    d = A.paired(a, b)
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.01)  # seeds 0 and 1 only, matched by seed


def test_mcnemar_counts_discordant_images_and_its_exact_p():
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    a = [0, 1, 2, 3, 4, 5, 0, 0]  # right on 0-5
    b = [0, 1, 2, 0, 0, 0, 6, 0]  # right on 0-2 and 6
    m = A.mcnemar(a, b, labels)
    assert (m["a_only"], m["b_only"]) == (3, 1)
    assert m["p"] == pytest.approx(2 * (1 + 4) / 16)  # two-sided tail of Binomial(4, 1/2) at 1
    assert A.mcnemar(a, a, labels)["p"] == 1.0
    ten = A.mcnemar(list(range(10)), [(d + 1) % 10 for d in range(10)], torch.arange(10))
    assert (ten["a_only"], ten["b_only"]) == (10, 0) and ten["p"] == pytest.approx(2 / 2**10)


def test_binomial_standard_error():
    assert A.binomial_se(0.9, 100) == pytest.approx(0.03)


# --- the sweep -------------------------------------------------------------------------------------


def sweep_run(lr, epochs, seed, acc, loss=0.3, hidden=(30,), diverged=False):
    r = run(hidden, seed, acc, loss, lr=lr, epochs=epochs)
    return {**r, "diverged": diverged, "final": None if diverged else r["final"]}


def test_choose_averages_over_seeds_instead_of_trusting_seed_0():
    from mnist_scratch.experiments import choose

    sweep = [sweep_run(0.1, 10, 0, 0.95), sweep_run(0.1, 10, 1, 0.85), sweep_run(0.1, 10, 2, 0.85),  # lucky seed 0
             sweep_run(0.3, 10, 0, 0.92), sweep_run(0.3, 10, 1, 0.92), sweep_run(0.3, 10, 2, 0.92)]
    assert choose(sweep) == {(30,): (0.3, 10)}
    # a setting where one seed diverged is skipped however good the others are
    sweep += [sweep_run(1.0, 10, 0, 0.99), sweep_run(1.0, 10, 1, 0.99), sweep_run(1.0, 10, 2, 0.1, diverged=True)]
    assert choose(sweep) == {(30,): (0.3, 10)}


def test_best_setting_breaks_exact_ties_by_loss_then_by_the_cheaper_setting():
    from mnist_scratch.experiments import best_setting

    runs = [sweep_run(0.3, 20, 0, 0.9, 0.30), sweep_run(0.1, 20, 0, 0.9, 0.30), sweep_run(0.1, 40, 0, 0.9, 0.30)]
    assert best_setting(runs, ("lr", "epochs")) == (0.1, 20)
    assert best_setting(runs[::-1], ("lr", "epochs")) == (0.1, 20)
    assert best_setting([sweep_run(1.0, 5, 0, 0.5, diverged=True)], ("lr",)) is None


def test_plateau_is_everything_within_one_standard_error_of_the_best():
    sweep = [sweep_run(lr, 10, 0, acc) for lr, acc in ((0.01, 0.80), (0.1, 0.88), (0.3, 0.90), (1.0, 0.871))]
    top = A.plateau(sweep, "784-30-10 ReLU", n_valid=100)  # se of 0.9 on 100 images: 0.03
    assert top["best"] == 0.9 and top["width"] == pytest.approx(0.03)
    assert top["settings"] == [(0.1, 10), (0.3, 10), (1.0, 10)]


# --- weights, read back ------------------------------------------------------------------------------


def trained_like(hidden=(3,), bias=True, seed=0):
    """A result holding the weights of a freshly built model, recorded as `train` records them."""
    from mnist_scratch.modules import mlp
    from mnist_scratch.train import layer_weights

    model = mlp([784, *hidden, 10], bias, generator=torch.Generator().manual_seed(seed))
    return model, {"weights": layer_weights(model), "config": {"hidden": list(hidden), "seed": seed}, "diverged": False}


@pytest.mark.parametrize("hidden,bias", [((), True), ((3,), True), ((3,), False), ((5, 4), True)])
def test_recorded_weights_reproduce_the_model(hidden, bias):
    model, r = trained_like(hidden, bias)
    x = torch.rand(7, 784, generator=torch.Generator().manual_seed(1))
    out, acts = A.forward(A.layers(r), x)
    assert torch.allclose(out, model(x), atol=1e-5)
    assert len(acts) == len(hidden)
    assert A.layers(r)[0][0].shape == (hidden[0] if hidden else 10, 784)  # (n_out, n_in), nn.Linear's layout
    assert torch.allclose(A.probabilities(r, x).sum(1), torch.ones(7, dtype=torch.float32), atol=1e-6)


def test_dead_units_are_those_never_active():
    _, r = trained_like((3,))
    w = torch.tensor(r["weights"][0]["weight"])
    w[1] = -1.0  # non-negative pixels: unit 1 is never positive
    r["weights"][0]["weight"], r["weights"][0]["bias"] = w.tolist(), [0.5, -0.1, 0.5]
    x = torch.rand(50, 784, generator=torch.Generator().manual_seed(2))
    assert A.dead_hidden_units(r, x).tolist() == [False, True, False]


def cell_map(cells: dict[tuple[int, int], float]) -> torch.Tensor:
    """A 28 x 28 map with the given value over whole cells of the 3 x 3 grid of the digit box."""
    m = torch.zeros(28, 28)
    cuts = torch.arange(4, 24).tensor_split(3)
    for (i, j), v in cells.items():
        m[cuts[i][0] : cuts[i][-1] + 1, cuts[j][0] : cuts[j][-1] + 1] = v
    return m.reshape(-1)


def test_template_reading_finds_rewarded_and_punished_cells_and_the_lowest_scoring_digit():
    w = torch.stack([cell_map({(0, 0): 1.0, (1, 1): -2.0})] + [cell_map({(2, 2): 1.0})] * 9)
    means = torch.stack([cell_map({(0, 0): 1.0})] + [cell_map({(1, 1): 1.0 + d / 10}) for d in range(1, 10)])
    first = A.template_reading(w, means)[0]
    assert (first["rewards"], first["punishes"]) == ("top left", "centre")
    assert first["lowest"] == 9  # the most ink in the punished centre; digit 0 itself is left out


def test_class_means():
    split = type("S", (), {"x": torch.tensor([[1.0] * 784, [3.0] * 784] * 10).reshape(20, 784),
                           "y": torch.arange(10).repeat_interleave(2)})()
    assert torch.allclose(A.class_means(split), torch.full((10, 784), 2.0))


def test_unit_kinds_tell_strokes_blobs_noise_and_dead_apart():
    gen = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    bars = torch.sin(rows / 2)  # horizontal bars: one orientation
    blob = torch.exp(-((rows - 14) ** 2 + (cols - 14) ** 2) / 20)  # a round spot: every orientation
    noise = torch.rand(28, 28, generator=gen) - 0.5
    units = [bars, blob, noise, -torch.ones(28, 28)]
    r = {"weights": [{"weight": torch.stack([u.reshape(-1) for u in units]).tolist(), "bias": [0.0, 0.0, 0.0, -1.0]},
                     {"weight": torch.zeros(10, 4).tolist(), "bias": [0.0] * 10}], "diverged": False}
    x = torch.rand(100, 784, generator=gen) * (torch.rand(100, 784, generator=gen) > 0.5)
    assert A.unit_kinds(r, x) == ["stroke", "blob", "noise", "dead"]


# --- mistakes --------------------------------------------------------------------------------------


def test_top_losses_are_the_most_confident_mistakes():
    r = {"weights": [{"weight": torch.eye(10, 784).tolist(), "bias": [0.0] * 10}]}
    x = torch.zeros(4, 784)
    x[0, 3], x[1, 5], x[2, 2], x[3, 1] = 9.0, 1.0, 5.0, 9.0  # confident 3, unsure 5, sure 2, sure 1
    split = type("S", (), {"x": x, "y": torch.tensor([3, 4, 7, 1])})()
    worst = A.top_losses(r, split, 2)
    assert [w["index"] for w in worst] == [2, 1] and worst[0]["pred"] == 2 and worst[0]["prob"] > 0.9


def confusion_run(matrix, seed=0):
    return {"confusion": {"test": matrix}, "diverged": False, "config": {"seed": seed}}


def test_per_digit_accuracy_and_error_pairs_from_confusion_matrices():
    eye = [[10 if i == j else 0 for j in range(10)] for i in range(10)]
    a = [row[:] for row in eye]
    a[4][4], a[4][9], a[9][9], a[9][4], a[3][3], a[3][8] = 6, 4, 8, 2, 9, 1
    acc = A.per_digit_accuracy([confusion_run(a), confusion_run(eye)])
    assert acc[4][0] == pytest.approx(0.8) and acc[0] == (1.0, 0.0)
    pairs = A.error_pairs([confusion_run(a)])
    assert pairs[0]["pair"] == (4, 9) and pairs[0]["count"] == 6 and pairs[0]["share"] == pytest.approx(6 / 7)
    assert pairs[1]["pair"] == (3, 8)


# --- the regression's hedging ---------------------------------------------------------------------


def test_residuals_remove_the_fitted_line_and_offsets_show_a_pull():
    labels = torch.tensor([0, 0, 4, 4, 9, 9])
    shrunk = {"valid_output": [1.0, 1.0, 4.2, 4.2, 8.2, 8.2]}  # a line of slope 0.8 through 1 at 0
    assert A.fitted_line(shrunk, labels) == pytest.approx((1.0, 0.8))
    assert A.residuals(shrunk, labels).abs().max() < 1e-12
    pulled = {"valid_output": [1.0, 1.0, 5.2, 3.2, 8.2, 8.2]}
    assert A.digit_offsets(pulled, labels)[4] == pytest.approx(0.0)  # one up, one down: no mean pull


def test_look_alikes_ignore_the_diagonal():
    conf = torch.eye(10) * 100
    conf[4, 9], conf[9, 4], conf[1, 7] = 5, 7, 3
    partner = A.look_alikes(conf)
    assert partner[4] == 9 and partner[9] == 4 and partner[1] == 7


def test_mirror_counts_towards_the_partner_against_the_same_distance_away():
    labels = torch.tensor([4] * 4 + [0] * 4 + [9] * 4)
    out = [6.0, 6.5, 2.0, 4.0, 0, 0, 0, 0, 9, 9, 9, 9]  # relative to the fitted line at 4: +2, +2.5, -2, 0
    r = {"valid_output": out}
    a, b = A.fitted_line(r, labels)
    partner = [9] * 10
    partner[9] = 4
    four = A.mirror(r, labels, partner)[4]
    fitted4 = a + 4 * b
    expected_toward = sum(1.5 <= v - fitted4 <= 3.5 for v in out[:4])
    expected_away = sum(1.5 <= fitted4 - v <= 3.5 for v in out[:4])
    assert (four["toward"], four["away"]) == (expected_toward, expected_away)
    assert four["partner"] == 9


def test_midpoint_rates_and_the_same_distance_baseline():
    labels = torch.tensor([4, 9, 0, 5, 1, 6, 2, 7, 3, 8])
    rates = A.midpoint_rates({"valid_output": [6.5, 6.0, 0.0, 2.5, 3.5, 6.0, 4.0, 4.5, 3.0, 8.0]}, labels)
    assert rates[(4, 9)] == 1.0 and rates[(0, 5)] == 0.5 and rates[(1, 6)] == 0.5 and rates[(2, 7)] == 1.0
    base = A.same_distance_baseline(rates, (4, 9), [(4, 9)])
    others = [v for (a, b), v in rates.items() if b - a == 5 and (a, b) != (4, 9)]
    assert base == pytest.approx(sum(others) / len(others))


def test_lean_counts_outputs_on_the_runner_up_side_of_their_digits_median():
    labels = torch.tensor([4] * 5 + [0, 9])
    probs = torch.zeros(7, 10)
    cases = [(9, 0.4), (9, 0.3), (1, 0.3), (9, 0.001), (None, 0.0)]  # runner-up and its probability, for the 4s
    for i, (runner, p) in enumerate(cases):
        probs[i, 4] = 1 - p
        if runner is not None:
            probs[i, runner] = p
    probs[5, 0], probs[6, 9] = 1.0, 1.0
    out = [4.8, 4.9, 4.7, 3.0, 4.5, 0.0, 9.0]  # the 4s' median is 4.7: up, up, level, down, down
    le = A.lean({"valid_output": out}, labels, probs)
    # unsure: the first three; towards 9 means above 4.7 (two), towards 1 below it (the third is at it)
    assert le["unsure"]["n"] == 3 and le["unsure"]["lean"] == pytest.approx(2 / 3)
    assert le["unsure"]["shift"] == pytest.approx(0.1)  # median of +0.1, +0.2, 0.0
    assert le["unsure"]["p"] == pytest.approx(4 / 8)  # P(at least 2 of 3 heads)


def test_onehot_sums():
    r = {"weights": [{"weight": torch.zeros(10, 784).tolist(), "bias": [0.1] * 10}]}
    assert A.onehot_sums(r, torch.rand(5, 784)) == pytest.approx((1.0, 0.0))


# --- biases: the cone ---------------------------------------------------------------------------------


def test_cone_of_identical_images_is_a_line():
    x = torch.rand(1, 784).repeat(5, 1)
    c = A.cone(x)
    assert c["cos_min"] == pytest.approx(1.0) and c["cv"] == pytest.approx(0.0, abs=1e-6)


def test_folding_a_bias_into_the_mean_direction_is_exact_when_every_projection_is_equal():
    gen = torch.Generator().manual_seed(0)
    m = torch.rand(784, generator=gen) + 0.5
    d = torch.randn(784, generator=gen)
    d -= (d @ m) / (m @ m) * m  # orthogonal to m: x . u is the same for every image
    x = torch.stack([m + 0.3 * d, m - 0.3 * d, m + 0.1 * d, m - 0.1 * d])
    _, r = trained_like(())
    folded = A.fold_first_bias(r, x)
    assert folded[0][1] is None
    assert torch.allclose(A.forward(folded, x)[0], A.forward(A.layers(r), x)[0], atol=1e-4)


# --- dead-unit traces and the hidden-size series ------------------------------------------------


def test_dead_trace_averages_shared_steps():
    a = {"dead_trace": {"step": [0, 1, 2, 4], "share": [[0.0], [0.5], [1.0], [1.0]]}}
    b = {"dead_trace": {"step": [0, 1, 2, 3], "share": [[0.0], [0.0], [0.5], [1.0]]}}
    steps, shares = A.dead_trace([a, b])
    assert steps == [0, 1, 2] and shares == [0.0, 0.25, 0.75]
    assert A.first_step_reaching(steps, shares, 0.5) == 2 and A.first_step_reaching(steps, shares, 1.0) is None


def test_at_chosen_rate_keeps_the_main_series():
    runs = [run((h,), s, lr=0.3) for h in (4, 8, 30) for s in (0, 1)] + [run((4,), s, lr=0.1) for s in (0, 1)]
    assert {r["config"]["lr"] for r in A.at_chosen_rate(runs)} == {0.3}
    assert len(A.at_chosen_rate(runs)) == 6


def test_markdown_escapes_pipes_inside_cells():
    line = tables.markdown(["max |ours − autograd|"], [["1e-16"]]).splitlines()[0]
    assert line == "| max \\|ours − autograd\\| |"

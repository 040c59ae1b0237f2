"""choices: which models and bootstrap the pages offer, and the one line when there is none."""

from types import SimpleNamespace

from fairprune.app import choices


def _rec(name, dataset="synthderm", num_classes=2, kind="dense", parent=None, level=0.0,
         loss="dense", sha=None):  # fmt: skip
    return SimpleNamespace(name=name, dataset=dataset, num_classes=num_classes, kind=kind,
                           parent=parent, target_reduction=level, loss=loss,
                           sha256=sha or f"sha-{name}")  # fmt: skip


def test_the_audit_lists_only_the_chosen_datasets_models():
    records = [_rec("a"), _rec("b", dataset="celeba"), _rec("c", dataset=""),
               _rec("d", num_classes=10), _rec("e")]  # fmt: skip
    listed, other_size, others = choices.audit_records(
        records, dataset="synthderm", num_classes=2, fits=lambda r: r.name != "e"
    )
    assert [r.name for r in listed] == ["a", "c"]  # an ONNX file naming no dataset is listed
    assert other_size == ["e"] and others == ["b"]
    # none for this dataset: one line that says where the others are, never their list
    listed, _, others = choices.audit_records(records, dataset="cifar10", num_classes=2,
                                              fits=lambda r: True)  # fmt: skip
    assert [r.name for r in listed] == ["c"]
    listed, _, others = choices.audit_records(records[:2], dataset="cifar10", num_classes=2,
                                              fits=lambda r: True)  # fmt: skip
    assert listed == [] and others == ["a", "b"]
    assert choices.no_models_message("CIFAR-10", others) == (
        "No model in the store was made for CIFAR-10 (2 made for other datasets: a, b); add one "
        "for it on the Models page, or choose their dataset on the Dataset page."
    )
    assert choices.no_models_message("CIFAR-10", []) == (
        "No models for CIFAR-10 in the store: run a sweep or add a model."
    )
    many = choices.no_models_message("X", ["a", "b", "c", "d"])
    assert "(4 made for other datasets: a, b, c …)" in many


def test_the_bootstrap_starts_where_every_chosen_model_has_a_stored_table():
    assert choices.bootstrap_choice([]) == ([0, 50, 100, 200, 500], 200)
    assert choices.bootstrap_choice([[], []]) == ([0, 50, 100, 200, 500], 200)
    # the dense model has tables of 200 (newer sweep) and 50; the pruned one only 50
    assert choices.bootstrap_choice([[200, 50], [50]]) == ([0, 50, 100, 200, 500], 50)
    # nothing shared: the first model's newest; a count off the usual list is offered too
    assert choices.bootstrap_choice([[30], [50]]) == ([0, 30, 50, 100, 200, 500], 30)
    assert choices.bootstrap_choice([[], [1000]]) == ([0, 50, 100, 200, 500, 1000], 1000)


def test_what_pruning_forgot_offers_only_the_dense_models_children():
    dense, other = _rec("d", sha="D"), _rec("o", sha="O")
    pruned = [_rec("p50", kind="pruned", parent="D", level=0.5, loss="pw"),
              _rec("q90", kind="pruned", parent="O", level=0.9, loss="ce"),
              _rec("p90pw", kind="pruned", parent="D", level=0.9, loss="pw"),
              _rec("p90ce", kind="pruned", parent="D", level=0.9, loss="ce")]  # fmt: skip
    assert [r.name for r in choices.pruned_children(pruned, dense)] == ["p90ce", "p90pw", "p50"]
    assert choices.pruned_children(pruned[:1], other) == []
    assert choices.NO_PRUNED_CHILD.format(dense="o") == (
        "No pruned model in the store was made from o: run a sweep from it on the Sparsity "
        "sweep page, or choose another dense model."
    )

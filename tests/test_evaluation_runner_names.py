"""Model labels in evaluation tables: two runs' `final/` folders must not share a label (paired_rows.py pairs rows by
label, so a shared one compared only one of the two models)."""

from hf_iis.evaluation.runner import model_name


def test_models_with_the_same_folder_name_get_their_run_in_the_label():
    paths = ["hf_iis/checkpoints/default", "runs/a/final", "runs/b/final"]
    assert [model_name(p, paths) for p in paths] == ["default", "a/final", "b/final"]
    assert model_name("runs/a/final", ["runs/a/final"]) == "final"  # alone: the folder's name, as before
    same_tail = ["x/run/final", "y/run/final"]
    assert [model_name(p, same_tail) for p in same_tail] == same_tail

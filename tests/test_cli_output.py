"""What the commands print and draw: exact float32 vectors, whole-number axes."""

import json

import numpy as np

from bertkit.cli import main


def test_encode_prints_and_writes_the_same_float32_values(tmp_path, capsys):
    assert main(["encode", "First do it", "then do it right", "-o", str(tmp_path / "v.npy")]) == 0
    assert main(["encode", "First do it", "then do it right", "-o", str(tmp_path / "v.jsonl")]) == 0
    capsys.readouterr()
    assert main(["encode", "First do it", "then do it right"]) == 0
    printed = [json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()]
    written = [json.loads(line)["embedding"] for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    vectors = np.load(tmp_path / "v.npy")
    assert printed == written  # one format for both
    np.testing.assert_array_equal(np.array(printed, dtype=np.float32), vectors)  # nothing rounded away
    digits = max(len(repr(x).lstrip("-0.").replace("e", " ").split()[0].replace(".", "")) for x in printed[0])
    assert digits <= 9  # float32's shortest decimals, not float64's 17


def test_explain_masks_axes_count_whole_rows_and_positions():
    import matplotlib.pyplot as plt

    from bertkit.seq2seq.explain import mask_batch, masks_figure

    batch = mask_batch([(["a", "b", "c"], ["[BOS]", "x", "y"]), (["a"], ["[BOS]", "x"])])
    figure = masks_figure(batch)
    figure.canvas.draw()
    counted = [a.get_xticks() for a in figure.axes[:6]] + [a.get_yticks() for a in figure.axes[:5]]
    for ticks in counted:  # rows, positions, dimensions (the last panel's y is a sine's value)
        assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks
    plt.close(figure)

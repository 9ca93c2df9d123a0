"""`aeuf embed` writes reusable features; `--features file` reads them back by response id."""

import numpy as np
from gold_pool import FAST, P, R, write_gold_pool

from aeuf import embed, io
from aeuf.cli import main
from aeuf.config import InputConfig


def test_embed_then_reuse_precomputed_features(tmp_path, capsys, monkeypatch):
    """...and a run reads (and checks) the file once: the check before anything is written
    hands its memory map on to the features stage."""
    pool_path = write_gold_pool(tmp_path / "pool.csv")
    assert main(["embed", str(pool_path), "--features", "stats", "--output_dir", str(tmp_path / "f"),
                 "--no_progress"]) == 0
    values = np.load(tmp_path / "f" / "features.npy")
    pool = io.read_pool(InputConfig(path=str(pool_path)))
    np.testing.assert_allclose(values, embed.compose([embed.response_stats(pool)]), atol=1e-6)
    ids = (tmp_path / "f" / "features.ids.txt").read_text().split()
    assert ids == [str(i) for i in pool.response_ids.reshape(-1)] and len(ids) == P * R
    flags = [f for f in FAST if f != "stats" and f != "--features"]
    reads, read = [], io.read_precomputed_features
    monkeypatch.setattr(io, "read_precomputed_features", lambda *a: reads.append(a) or read(*a))
    assert main([str(pool_path), "--output_dir", str(tmp_path / "run"), "--features", "file",
                 "--precomputed", str(tmp_path / "f" / "features.npy"), *flags]) == 0
    assert len((tmp_path / "run" / "preferences.jsonl").read_text().splitlines()) == P
    assert len(reads) == 1


def test_precomputed_features_with_foreign_ids_are_refused(tmp_path, capsys):
    pool_path = write_gold_pool(tmp_path / "pool.csv")
    np.save(tmp_path / "x.npy", np.zeros((3, 4), np.float32))
    (tmp_path / "x.ids.txt").write_text("a\nb\nc\n")
    code = main([str(pool_path), "--output_dir", str(tmp_path / "run"), "--features", "file",
                 "--precomputed", str(tmp_path / "x.npy"), "--no_progress"])
    err = capsys.readouterr().err
    assert code == 1 and "x.npy" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "preferences.jsonl").exists()

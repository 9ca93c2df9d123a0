"""Precomputed feature files (every accepted layout, every mismatch) and the run's
content-hash FeatureStore (round trip, dedupe, compaction, crash leftovers)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from aeuf.errors import InputError
from aeuf.io import FeatureStore, align_features, read_precomputed_features

IDS = ["p1:a", "p1:b", "p2:a", "p2:b"]


def vectors(n=4, d=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def check(ids, values, want_values):
    assert ids == IDS and values.dtype == np.float32
    np.testing.assert_array_equal(values, want_values)


@pytest.mark.parametrize("ids_name,write", [
    ("feats.ids.txt", lambda p: p.write_text("\n".join(IDS) + "\n")),
    ("feats.json", lambda p: p.write_text(json.dumps(IDS))),
    ("feats.ids.parquet", lambda p: pd.DataFrame({"response_id": IDS}).to_parquet(p)),
])
def test_npy_with_ids_file_found_next_to_it(tmp_path, ids_name, write):
    v = vectors()
    np.save(tmp_path / "feats.npy", v.astype(np.float64))
    write(tmp_path / ids_name)
    check(*read_precomputed_features(str(tmp_path / "feats.npy")), v)


def test_npy_with_explicit_ids_file(tmp_path):
    v = vectors()
    np.save(tmp_path / "x.npy", v)
    (tmp_path / "names.txt").write_text("\n".join(IDS))
    check(*read_precomputed_features(str(tmp_path / "x.npy"), str(tmp_path / "names.txt")), v)


def test_parquet_and_save_to_disk_vector_columns(tmp_path):
    import datasets

    v = vectors()
    pd.DataFrame({"id": IDS, "embedding": list(v)}).to_parquet(tmp_path / "f.parquet")
    check(*read_precomputed_features(str(tmp_path / "f.parquet")), v)
    ds = datasets.Dataset.from_dict({"response_id": IDS, "vec": v.tolist(), "note": ["x"] * 4})
    ds.save_to_disk(str(tmp_path / "hf"))
    check(*read_precomputed_features(str(tmp_path / "hf")), v)


def test_align_reorders_and_names_first_missing_id(tmp_path):
    v = vectors()
    out = align_features(IDS, v, ["p2:b", "p1:a"], source="f.npy")
    np.testing.assert_array_equal(out, v[[3, 0]])
    with pytest.raises(InputError) as e:
        align_features(IDS, v, ["p1:a", "p9:a", "p9:b"], source="f.npy")
    msg = str(e.value)
    assert "f.npy" in msg and "'p9:a'" in msg and "2 of 3" in msg and "\n" not in msg


def test_npy_without_ids_file(tmp_path):
    np.save(tmp_path / "x.npy", vectors())
    with pytest.raises(InputError, match="x.ids.txt"):
        read_precomputed_features(str(tmp_path / "x.npy"))


def test_id_count_mismatch_names_both_files(tmp_path):
    np.save(tmp_path / "x.npy", vectors())
    (tmp_path / "x.ids.txt").write_text("\n".join(IDS[:3]))
    with pytest.raises(InputError) as e:
        read_precomputed_features(str(tmp_path / "x.npy"))
    assert "x.ids.txt" in str(e.value) and "x.npy" in str(e.value) and "3 ids" in str(e.value)


def test_duplicate_id_names_rows(tmp_path):
    pd.DataFrame({"id": IDS[:3] + ["p1:b"], "embedding": list(vectors())}).to_parquet(
        tmp_path / "d.parquet")
    with pytest.raises(InputError) as e:
        read_precomputed_features(str(tmp_path / "d.parquet"))
    assert "row 4" in str(e.value) and "row 2" in str(e.value) and "'p1:b'" in str(e.value)


def test_ragged_vector_names_row_and_column(tmp_path):
    rows = [{"id": i, "embedding": [0.0, 1.0]} for i in IDS]
    rows[2]["embedding"] = [0.0]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError) as e:
        read_precomputed_features(str(tmp_path / "r.jsonl"))
    assert "row 3" in str(e.value) and "'embedding'" in str(e.value)


def test_non_finite_values_name_the_row(tmp_path):
    v = vectors()
    v[1, 2] = np.nan
    np.save(tmp_path / "x.npy", v)
    (tmp_path / "x.ids.txt").write_text("\n".join(IDS))
    with pytest.raises(InputError, match="row 2"):
        read_precomputed_features(str(tmp_path / "x.npy"))


# --- FeatureStore ------------------------------------------------------------------------

def keys_for(n, enc="enc"):
    return [FeatureStore.content_key(enc, f"text {i}") for i in range(n)]


def test_content_key_depends_on_encoder_and_text():
    k = FeatureStore.content_key("enc", "hello")
    assert len(k) == 64 and k == FeatureStore.content_key("enc", "hello")
    assert k != FeatureStore.content_key("enc2", "hello")
    assert k != FeatureStore.content_key("enc", "hello ")
    assert FeatureStore.content_key("a", "bc") != FeatureStore.content_key("ab", "c")


def test_round_trip_across_instances_with_missing_rows(tmp_path):
    keys, v = keys_for(6), vectors(6, 3)
    store = FeatureStore(tmp_path, "enc")
    found, vals = store.lookup(keys)
    assert not found.any() and vals.shape == (6, 0)
    store.add(keys[:4], v[:4])
    found, vals = FeatureStore(tmp_path, "enc").lookup(keys[::-1])  # fresh instance: from disk
    assert found.tolist() == [False, False, True, True, True, True]
    np.testing.assert_array_equal(vals[2:], v[:4][::-1])
    assert not vals[:2].any()
    assert len(FeatureStore(tmp_path, "other-encoder")) == 0


def test_known_keys_are_not_written_again(tmp_path):
    keys, v = keys_for(3), vectors(3, 3)
    store = FeatureStore(tmp_path, "enc")
    store.add(keys, v)
    chunks = sorted(store.dir.glob("chunk-*.npz"))
    store.add(keys, v + 1)  # same keys: cache keeps the first vectors, writes nothing
    FeatureStore(tmp_path, "enc").add(keys[:1] + keys[:1], v[:2] + 5)
    assert sorted(store.dir.glob("chunk-*.npz")) == chunks
    np.testing.assert_array_equal(FeatureStore(tmp_path, "enc").lookup(keys)[1], v)


def test_compaction_keeps_every_vector(tmp_path):
    keys, v = keys_for(40), vectors(40, 4)
    store = FeatureStore(tmp_path, "enc")
    for s in range(0, 40, 4):
        store.add(keys[s:s + 4], v[s:s + 4])
    assert (store.dir / "values.npy").is_file() and (store.dir / "ids.parquet").is_file()
    assert len(list(store.dir.glob("chunk-*.npz"))) < 10
    found, vals = FeatureStore(tmp_path, "enc").lookup(keys)
    assert found.all()
    np.testing.assert_array_equal(vals, v)


def test_crash_leftovers_are_ignored(tmp_path):
    keys, v = keys_for(4), vectors(4, 3)
    store = FeatureStore(tmp_path, "enc")
    store.add(keys[:2], v[:2])
    (store.dir / ".chunk-0.npz.tmp-abc").write_bytes(b"PK\x03\x04 half a zip")  # killed mid-write
    (store.dir / "chunk-99999999999999999999-dead.npz").write_bytes(b"PK\x03\x04 torn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = FeatureStore(tmp_path, "enc")
        found, vals = fresh.lookup(keys)
    assert found.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(vals[:2], v[:2])
    assert any("unreadable feature chunk" in str(w.message) for w in caught)
    assert not (store.dir / "chunk-99999999999999999999-dead.npz").exists()
    fresh.add(keys[2:], v[2:])  # the store keeps working
    np.testing.assert_array_equal(FeatureStore(tmp_path, "enc").lookup(keys)[1], v)


@pytest.mark.parametrize("stale", ["ids.parquet", "values.npy"])
def test_compaction_killed_between_renames(tmp_path, stale):
    """One of values.npy / ids.parquet replaced, the other still old, chunks not deleted."""
    keys, v = keys_for(6), vectors(6, 3)
    store = FeatureStore(tmp_path, "enc")
    store.add(keys[:3], v[:3])
    store.compact()
    old = (store.dir / stale).read_bytes()
    store.add(keys[3:5], v[3:5])
    store.add(keys[5:], v[5:])
    chunks = {p.name: p.read_bytes() for p in store.dir.glob("chunk-*.npz")}
    store.compact()
    assert not list(store.dir.glob("chunk-*.npz"))
    (store.dir / stale).write_bytes(old)
    for name, data in chunks.items():
        (store.dir / name).write_bytes(data)
    found, vals = FeatureStore(tmp_path, "enc").lookup(keys)
    assert found.all()
    np.testing.assert_array_equal(vals, v)
    FeatureStore(tmp_path, "enc").compact()  # and the next compaction heals it
    assert not list(store.dir.glob("chunk-*.npz"))
    np.testing.assert_array_equal(FeatureStore(tmp_path, "enc").lookup(keys)[1], v)


def test_dimension_mismatch_is_an_error(tmp_path):
    store = FeatureStore(tmp_path, "enc")
    store.add(keys_for(2), vectors(2, 3))
    with pytest.raises(InputError, match="dimension 4"):
        FeatureStore(tmp_path, "enc").add(keys_for(3)[2:], vectors(1, 4))
    with pytest.raises(InputError, match="delete that folder"):
        FeatureStore(tmp_path, "enc", dim=8).lookup(keys_for(1))

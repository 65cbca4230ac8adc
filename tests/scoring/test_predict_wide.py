"""Wide inputs (issue 30, item 8): thousands of pass-through columns score as the narrow path does, and checking
the files' schemas is linear in the number of columns (counted comparisons of column names, no clock)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from predictkit import FEATURES, expected, make_frame, read_output

from roost.scoring.sources import check_columns, check_files_agree, resolve_source


def _wide(n_extra: int, rows: int, seed: int):
    """make_frame's columns then n_extra float/int/text columns (every third an int, every fifth text)."""
    df = make_frame(rows, seed=seed)
    rng = np.random.default_rng(seed)
    cols = {c: pa.array(df[c]) for c in df.columns}
    for i in range(n_extra):
        if i % 5 == 0:
            cols[f"x{i}"] = pa.array([f"t{v}" for v in rng.integers(0, 9, rows)])
        elif i % 3 == 0:
            cols[f"x{i}"] = pa.array(rng.integers(-5, 5, rows))
        else:
            cols[f"x{i}"] = pa.array(rng.normal(size=rows))
    return pa.table(cols), df


def test_all_columns_kept_equals_the_narrow_path_and_the_input(model, tmp_path, cli):
    d = tmp_path / "in"
    d.mkdir()
    tables = []
    for k, rows in enumerate((20, 13)):
        t, _ = _wide(1500, rows, seed=k + 1)
        pq.write_table(t, d / f"p{k}.parquet")
        tables.append(t)
    inp = pa.concat_tables(tables).to_pandas().sort_values("user_id").reset_index(drop=True)
    code, out, err = cli("predict", model, "-i", str(d), "-o", str(tmp_path / "wide"), "--quiet")
    assert code == 0, err
    narrow = ["user_id", "x0", "x3", "x1499"]
    code, out, err = cli(
        "predict", model, "-i", str(d), "-o", str(tmp_path / "narrow"), "--quiet", "--columns", ",".join(narrow)
    )
    assert code == 0, err
    wide, thin = read_output(tmp_path / "wide"), read_output(tmp_path / "narrow")
    assert list(wide.columns) == [*inp.columns, "probability"]
    assert wide[[*narrow, "probability"]].equals(thin)
    assert wide.drop(columns="probability").equals(inp)  # every input column passed through unchanged
    np.testing.assert_allclose(wide["probability"], expected(model, inp[FEATURES]), atol=1e-6, rtol=0)


class _Name(str):
    """A column name that counts how often it is compared for equality (list scans compare, hash lookups
    compare once)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Name.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _comparisons(tmp_path, n: int) -> int:
    """Comparisons made checking two files of n columns, every column kept."""
    d = tmp_path / f"w{n}"
    d.mkdir()
    for k in range(2):
        t, _ = _wide(n - len(FEATURES) - 2, 3, seed=k + 1)
        pq.write_table(t, d / f"p{k}.parquet")
    source = resolve_source(str(d))
    first = pq.read_schema(source.files[0])
    keep = [_Name(c) for c in first.names]
    needed = [_Name(c) for c in FEATURES]
    _Name.compared = 0
    check_columns(list(first.names), needed, keep, ["probability"], where="the input")
    check_files_agree(source, first, needed, keep, dict.fromkeys(FEATURES, "float64"))
    return _Name.compared


def test_checking_wide_files_is_linear_in_the_columns(tmp_path):
    counts = {n: _comparisons(tmp_path, n) for n in (1000, 2000, 4000)}
    assert counts[2000] <= 2.2 * counts[1000] + 50, counts
    assert counts[4000] <= 2.2 * counts[2000] + 50, counts
    assert counts[4000] <= 10 * 4000, counts  # a few comparisons per column, not one per pair


@pytest.mark.parametrize("retype", [False, True])
def test_a_null_column_in_the_first_file_takes_the_later_files_type(tmp_path, retype):
    """The output schema is built once: a kept all-null column of the first file gets the later file's type, the
    other fields and their order stay as they were."""
    d = tmp_path / "in"
    d.mkdir()
    t0, _ = _wide(50, 4, seed=1)
    t1, _ = _wide(50, 4, seed=2)
    if retype:
        t0 = t0.set_column(t0.schema.get_field_index("x7"), "x7", pa.nulls(4))
    pq.write_table(t0, d / "a.parquet")
    pq.write_table(t1, d / "b.parquet")
    source = resolve_source(str(d))
    first = pq.read_schema(source.files[0])
    differ, schema = check_files_agree(source, first, FEATURES, list(first.names), dict.fromkeys(FEATURES, "float64"))
    want = [t1.schema.field("x7").type if (retype and f.name == "x7") else f.type for f in first]
    assert schema.names == first.names and schema.types == want
    assert differ == ({source.files[0]} if retype else set())

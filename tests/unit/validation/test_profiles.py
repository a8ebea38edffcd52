"""The aggregate profile of large tables: duplicate keys against pandas, merged chunk profiles."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from radgen.validation.profiles import duplicate_keys, merge_profiles, table_profile

_text = st.one_of(st.none(), st.sampled_from(["a", "b", "TCGA-01", "é", ""]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_text, _text, st.integers(0, 3)), max_size=40))
def test_duplicate_keys_counts_what_pandas_duplicated_counts(
    rows: list[tuple[str | None, str | None, int]],
) -> None:
    frame = pd.DataFrame(rows, columns=["a", "b", "c"]).astype({"a": object, "b": object})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for keys in (["a"], ["a", "b"], ["a", "b", "c"]):
        assert duplicate_keys(table, keys) == int(frame.duplicated(subset=keys).sum())


def test_merged_chunk_profiles_equal_the_whole_table_profile() -> None:
    whole = pa.table(
        {
            "sample_id": [f"S{i // 5}" for i in range(20)],
            "gene_id": [f"G{i % 5}" for i in range(20)],
            "count": [float(i) if i != 7 else None for i in range(20)],
            "tpm": [1.0] * 20,
        }
    )
    parts = [table_profile(whole.slice(s, 5), "expression") for s in range(0, 20, 5)]
    merged = merge_profiles(parts)
    expected = table_profile(whole, "expression")
    assert merged["__rows"][0] == 20
    assert merged["count__nulls"][0] == 1
    for column in expected.columns:
        assert merged[column][0] == expected[column][0], column

"""Dataset names, class folder names, split ratios and CLI value parsing."""
from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.data.datasets.naming import check_dataset_name, class_folder_name, parse_ref
from src.data.datasets.spec import (DatasetSpec, parse_augment, parse_mapping, parse_split,
                                    validate_split)
from src.errors import DatasetError


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".", "", ".hidden", "CON",
                                  "nul.txt", "com1", "a..b", "x" * 65, "name:v2", "end."])
def test_unsafe_dataset_names_are_refused(name):
    with pytest.raises(DatasetError, match="cannot be a dataset name"):
        check_dataset_name(name)


@pytest.mark.parametrize("name", ["demo-det", "cars_2024", "v1.2", "A"])
def test_plain_dataset_names_pass(name):
    assert check_dataset_name(name) == name


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=30))
def test_class_folder_names_stay_inside_their_folder(tmp_path_factory, name):
    folder = class_folder_name(name)
    assert "/" not in folder and "\\" not in folder and "\0" not in folder
    assert folder not in (".", "..") and not folder.startswith(".")
    assert folder.split(".")[0].lower() not in {"con", "prn", "aux", "nul"}
    root = tmp_path_factory.mktemp("cls")
    (root / folder).mkdir()
    assert (root / folder).resolve().parent == root.resolve()


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_class_folder_encoding_keeps_distinct_names_distinct(a, b):
    if a != b:
        assert class_folder_name(a) != class_folder_name(b)


@given(st.text(min_size=1, max_size=20))
def test_class_folder_names_decode_back_with_unquote(name):
    # src/training/image_folder.py reads class folders back with urllib's unquote.
    assert unquote(class_folder_name(name)) == name


def test_class_folder_names_keep_plain_names():
    assert class_folder_name("traffic light") == "traffic light"
    assert class_folder_name("a/b") == "a%2Fb"
    assert class_folder_name("..") == "%2E%2E"
    assert class_folder_name("CON") == "%43ON"


def test_dataset_refs():
    assert parse_ref("demo") == ("demo", None)
    assert parse_ref("demo:v3") == ("demo", 3)


@given(st.tuples(*[st.floats(-0.5, 1.5, allow_nan=False)] * 3))
def test_split_ratios_are_accepted_exactly_when_valid(ratios):
    valid = all(0 <= r <= 1 for r in ratios) and ratios[0] > 0 and abs(sum(ratios) - 1) <= 1e-6
    if valid:
        assert validate_split(ratios) == ratios
    else:
        with pytest.raises(DatasetError):
            validate_split(ratios)


@pytest.mark.parametrize("text, message", [
    ("0.7,0.2", "three ratios"), ("0,0.5,0.5", "train ratio must be above 0"),
    ("0.7,0.2,0.2", "sum to 1.1"), ("1.2,-0.1,-0.1", "not in \\[0, 1\\]"),
    ("a,b,c", "not a list of numbers")])
def test_bad_split_texts_name_the_problem(text, message):
    with pytest.raises(DatasetError, match=message):
        parse_split(text)


def test_split_ratios_summing_to_one_within_tolerance():
    assert parse_split("0.7,0.2,0.1") == (0.7, 0.2, 0.1)
    assert validate_split((1 / 3, 1 / 3, 1 / 3 + 5e-7))


def test_mapping_and_augment_parsing():
    assert parse_mapping("car=vehicle, truck=vehicle") == {"car": "vehicle",
                                                           "truck": "vehicle"}
    aug = parse_augment("heavy:bike=20,car=2")
    assert (aug.pipeline, aug.factors) == ("heavy", {"bike": 20, "car": 2})
    for bad in ("car", "car=", "=x"):
        with pytest.raises(DatasetError, match="not a class mapping"):
            parse_mapping(bad)
    with pytest.raises(DatasetError, match="CLASS=FACTOR"):
        parse_augment("heavy:bike=many")


def test_spec_rejects_bad_values():
    with pytest.raises(DatasetError, match="unknown task"):
        DatasetSpec(name="x", task="pose")
    with pytest.raises(DatasetError, match="unknown grouping"):
        DatasetSpec(name="x", group_by="day")
    with pytest.raises(DatasetError, match="block_size"):
        DatasetSpec(name="x", block_size=0)
    assert DatasetSpec(name="x").to_config()["split"] == [0.7, 0.2, 0.1]

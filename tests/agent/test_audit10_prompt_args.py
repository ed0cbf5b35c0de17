"""Audit 10: the prompt values refuse wrong argument types, naming the parameter.

A list of pairs used to be taken as a mapping (``metadata=["ab"]`` became
``{"a": "b"}``), other non-mappings failed with FrozenDict's own message, and
``make_default="no"`` made the prompt the default.
"""

from __future__ import annotations

from typing import Any

import pytest

from stageflow_trio.agent import PromptLibrary, PromptTemplate, RenderedPrompt


@pytest.mark.parametrize("metadata", [["ab"], [("a", 1)], 5, "ab"])
def test_template_metadata_must_be_a_mapping(metadata: Any) -> None:
    kind = type(metadata).__name__
    with pytest.raises(
        TypeError, match=rf"^PromptTemplate: metadata must be a mapping or None; got {kind}$"
    ):
        PromptTemplate(name="p", version="v1", template="t", metadata=metadata)


def test_template_metadata_mapping_or_none_is_kept() -> None:
    assert PromptTemplate(name="p", version="v1", template="t", metadata=None).metadata == {}
    template = PromptTemplate(name="p", version="v1", template="t", metadata={"owner": "ops"})
    assert template.render().metadata == {"owner": "ops"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variables": [("a", 1)]}, "variables must be a mapping or None; got list"),
        ({"metadata": 1}, "metadata must be a mapping or None; got int"),
        ({"name": 1}, "name must be a str; got int"),
        ({"content": None}, "content must be a str; got NoneType"),
    ],
)
def test_rendered_prompt_checks_its_fields(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "p", "version": "v1", "content": "c", **kwargs}
    with pytest.raises(TypeError, match=rf"^RenderedPrompt: {message}$"):
        RenderedPrompt(**fields)


def test_register_make_default_must_be_a_bool() -> None:
    library = PromptLibrary()
    library.register(PromptTemplate(name="p", version="v1", template="one"))
    with pytest.raises(
        TypeError, match=r"^PromptLibrary\.register: make_default must be a bool; got str$"
    ):
        library.register(PromptTemplate(name="p", version="v2", template="two"), make_default="no")  # type: ignore[arg-type]
    # Nothing was registered by the refused call.
    assert library.versions("p") == ("v1",)
    assert library.render("p").content == "one"

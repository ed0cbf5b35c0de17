"""Tests for stageflow_trio.agent.prompts."""

from __future__ import annotations

import attrs
import pytest

from stageflow_trio.agent.prompts import (
    PromptLibrary,
    PromptRenderError,
    PromptTemplate,
    RenderedPrompt,
)
from stageflow_trio.utils.frozen import FrozenDict


def test_render_fills_variables_and_keeps_name_version_metadata() -> None:
    template = PromptTemplate(
        name="greet", version="v1", template="Hi {who}, {n}", metadata={"owner": "ops"}
    )
    rendered = template.render({"who": "Ada", "n": 3})
    assert rendered == RenderedPrompt(
        name="greet",
        version="v1",
        content="Hi Ada, 3",
        variables={"who": "Ada", "n": 3},
        metadata={"owner": "ops"},
    )
    assert type(rendered.variables) is FrozenDict
    assert type(rendered.metadata) is FrozenDict
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rendered.content = "x"  # type: ignore[misc]


def test_render_without_variables_and_missing_variable() -> None:
    assert PromptTemplate(name="p", version="v1", template="plain").render().content == "plain"
    with pytest.raises(PromptRenderError, match=r"^Missing prompt variable 'who' for p@v2$"):
        PromptTemplate(name="p", version="v2", template="Hi {who}").render({})
    assert issubclass(PromptRenderError, ValueError)


def test_template_defaults() -> None:
    template = PromptTemplate(name="p", version="v1", template="t")
    assert (template.description, template.metadata) == ("", FrozenDict())


@pytest.mark.parametrize("param", ["name", "version", "template", "description"])
def test_template_rejects_non_str_fields(param: str) -> None:
    kwargs: dict[str, object] = {"name": "p", "version": "v", "template": "t", param: 1}
    with pytest.raises(TypeError, match=rf"^PromptTemplate: {param} must be a str; got int$"):
        PromptTemplate(**kwargs)  # type: ignore[arg-type]


def test_render_rejects_non_mapping_variables() -> None:
    template = PromptTemplate(name="p", version="v", template="t")
    with pytest.raises(
        TypeError, match=r"^PromptTemplate.render: variables must be a mapping or None; got list$"
    ):
        template.render(["x"])  # type: ignore[arg-type]


def test_library_first_version_is_default_until_make_default() -> None:
    library = PromptLibrary()
    v1 = PromptTemplate(name="p", version="v1", template="one {x}")
    v2 = PromptTemplate(name="p", version="v2", template="two {x}")
    v3 = PromptTemplate(name="p", version="v3", template="three {x}")
    library.register(v1)
    library.register(v2)
    assert library.get("p") is v1
    library.register(v3, make_default=True)
    assert library.get("p") is v3
    assert library.get("p", version="v2") is v2
    assert library.render("p", variables={"x": 1}).content == "three 1"
    assert library.render("p", version="v1", variables={"x": 1}).content == "one 1"
    assert library.versions("p") == ("v1", "v2", "v3")
    assert library.versions("nope") == ()
    library.register(PromptTemplate(name="q", version="a", template=""))
    assert library.list_prompts() == {"p": ("v1", "v2", "v3"), "q": ("a",)}


def test_library_replaces_same_name_and_version() -> None:
    library = PromptLibrary()
    library.register(PromptTemplate(name="p", version="v1", template="old"))
    library.register(PromptTemplate(name="p", version="v1", template="new"))
    assert library.render("p").content == "new"
    assert library.versions("p") == ("v1",)


def test_library_unknown_name_and_version() -> None:
    library = PromptLibrary()
    with pytest.raises(KeyError, match=r"^'Unknown prompt: p'$"):
        library.get("p")
    library.register(PromptTemplate(name="p", version="v1", template=""))
    with pytest.raises(KeyError, match=r"^\"Unknown prompt version for p: 'v9'\"$"):
        library.get("p", version="v9")


def test_library_register_rejects_non_templates() -> None:
    with pytest.raises(
        TypeError, match=r"^PromptLibrary.register: prompt must be a PromptTemplate; got dict$"
    ):
        PromptLibrary().register({"name": "p"})  # type: ignore[arg-type]

"""Rendering a gate's message: exact text, or an error naming what is missing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from metaflow_hitl.errors import MessageRenderError
from metaflow_hitl.message import MAX_MESSAGE_CHARS, MissingArtifact, render_message


class Artifacts:
    """A stand-in for the glue's artifact view: attributes, or MissingArtifact naming the rest."""

    def __init__(self, where: str = "step 'evaluate'", **values: Any) -> None:
        self.__dict__["_values"] = values
        self.__dict__["_where"] = where

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        raise MissingArtifact(name, self.__dict__["_where"], values)


FLOW = Artifacts(accuracy=0.9312, model="resnet", n=3, tags=["a", "b"])
INPUTS = SimpleNamespace(train_a=Artifacts(score=0.5), train_b=Artifacts(score=0.75))


@pytest.mark.parametrize(
    ("template", "text"),
    [
        pytest.param("Deploy?", "Deploy?", id="plain"),
        pytest.param(
            "Accuracy {self.accuracy:.1%}: deploy?", "Accuracy 93.1%: deploy?", id="percent"
        ),
        pytest.param("{self.model!r} x{self.n:02d}", "'resnet' x03", id="conversion-and-width"),
        pytest.param("{self.tags[1]}", "b", id="index-into-artifact"),
        pytest.param(
            "{inputs.train_a.score} vs {inputs.train_b.score}", "0.5 vs 0.75", id="join-inputs"
        ),
        pytest.param("{{literal}} {self.n}", "{literal} 3", id="escaped-braces"),
        pytest.param("ünïcödé {self.model} ✓", "ünïcödé resnet ✓", id="unicode"),
    ],
)
def test_renders(template: str, text: str) -> None:
    assert render_message(template, step="gate", self=FLOW, inputs=INPUTS) == text


def test_missing_artifact_is_named_with_what_is_available() -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message("Accuracy {self.acuracy:.1%}", step="gate", self=FLOW)
    text = str(info.value)
    assert "'acuracy'" in text
    assert "accuracy, model, n, tags" in text  # what the author could have meant
    assert "Accuracy {self.acuracy:.1%}" in text  # the template, to find the typo
    assert info.value.hint


def test_missing_artifact_on_a_join_input_is_named() -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message("{inputs.train_a.loss}", step="join", self=FLOW, inputs=INPUTS)
    assert "'loss'" in str(info.value)
    assert "score" in str(info.value)


def test_plain_attribute_error_still_names_the_attribute() -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message("{self.missing}", step="gate", self=SimpleNamespace(present=1))
    assert "missing" in str(info.value)
    assert "inputs" in (info.value.hint or "")  # points join-step authors to {inputs...}


@pytest.mark.parametrize(
    ("template", "name"),
    [
        pytest.param("{flow.accuracy}", "flow", id="flow-instead-of-self"),
        pytest.param("{accuracy}", "accuracy", id="bare-artifact-name"),
        pytest.param("{self.n} {current.run_id}", "current", id="metaflow-current"),
    ],
)
def test_unknown_top_level_name_is_named(template: str, name: str) -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message(template, step="gate", self=FLOW)
    assert f"{name!r}" in str(info.value)
    assert "{self.NAME}" in (info.value.hint or "")


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{self.model:.1%}", id="percent-of-a-string"),
        pytest.param("{self.accuracy:d}", id="int-format-of-a-float"),
        pytest.param("{self.n:zz}", id="nonsense-spec"),
        pytest.param("{self.n!z}", id="unknown-conversion"),
        pytest.param("Deploy {", id="unclosed-brace"),
        pytest.param("Deploy }", id="lone-closing-brace"),
        pytest.param("{0}", id="positional-field"),
        pytest.param("{}", id="empty-field"),
        pytest.param("{self.n[0]}", id="index-into-int"),
        pytest.param("{self.tags[5]}", id="index-out-of-range"),
    ],
)
def test_bad_templates_raise_message_render_error_with_the_template(template: str) -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message(template, step="gate", self=FLOW)
    assert repr(template) in str(info.value)


def test_message_at_the_limit_renders() -> None:
    body = "x" * MAX_MESSAGE_CHARS
    assert render_message("{self.model}", step="gate", self=Artifacts(model=body)) == body


def test_too_long_message_is_refused_with_its_length() -> None:
    big = Artifacts(table="x" * MAX_MESSAGE_CHARS)
    with pytest.raises(MessageRenderError) as info:
        render_message("T: {self.table}", step="gate", self=big)
    assert str(MAX_MESSAGE_CHARS + 3) in str(info.value)
    assert str(MAX_MESSAGE_CHARS) in str(info.value)


def test_render_errors_are_never_the_raw_exception() -> None:
    with pytest.raises(MessageRenderError) as info:
        render_message("{self.accuracy:.1%}", step="gate", self=Artifacts(accuracy="n/a"))
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__

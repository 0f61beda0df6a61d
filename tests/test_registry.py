"""The rule registry: codes, names, docs and examples are complete and well-formed."""

from __future__ import annotations

import pytest

from pgolf_audit import registry
from pgolf_audit.model import Category, Confidence, Severity
from pgolf_audit.rulebase import DOC_SECTIONS, MetaRule

RULES = registry.all_rules()


def test_registry_is_not_empty_and_sorted():
    codes = [r.CODE for r in RULES]
    assert len(codes) >= 20
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert len({r.NAME for r in RULES}) == len(codes), "rule names must be unique"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.CODE)
def test_rule_metadata(rule):
    assert rule.CODE.startswith("PG") and len(rule.CODE) == 5
    assert isinstance(rule.CATEGORY, Category)
    assert isinstance(rule.SEVERITY, Severity)
    assert isinstance(rule.CONFIDENCE, Confidence)
    assert rule.summary(), "first docstring line is the summary"
    family = {"1": Category.LEGALITY, "2": Category.ARTIFACT, "3": Category.TIME, "5": Category.STATISTICS,
              "7": Category.METRIC, "8": Category.RERUN, "9": Category.META}.get(rule.CODE[2])
    if family is not None:
        assert rule.CATEGORY is family, f"{rule.CODE} is in family {rule.CODE[2]}xx but category {rule.CATEGORY}"
    if rule.SEVERITY is Severity.ERROR and rule.CATEGORY is not Category.META:
        assert rule.REFERENCES, "error rules cite the challenge rule they enforce"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.CODE)
def test_rule_docs_have_every_section(rule):
    sections = rule.doc_sections()
    missing = [s for s in DOC_SECTIONS if not sections.get(s)]
    assert not missing, f"{rule.CODE} docstring lacks sections: {missing}"


@pytest.mark.parametrize("rule", [r for r in RULES if not issubclass(r, MetaRule)], ids=lambda r: r.CODE)
def test_rule_has_examples(rule):
    assert rule.INVALID, f"{rule.CODE} needs at least one INVALID example"
    assert rule.VALID, f"{rule.CODE} needs at least one VALID example"


def test_references_name_rules_of_the_catalogue():
    known_prefixes = ("R-EVAL", "R-TTT", "R-SLOT", "R-ETLB", "R-NGRAM", "R-PPM", "R-SMEAR", "R-DATA", "R-BPB",
                      "R-TOKENIZER", "R-ART", "R-TIME", "R-HW", "R-NO-EXTRA", "R-SIG", "R-ORDER", "R-NONRECORD",
                      "R-FMT", "R-MULTIPASS")
    for rule in RULES:
        for ref in rule.REFERENCES:
            assert ref.startswith(known_prefixes), f"{rule.CODE}: unknown rule reference {ref}"


def test_selection_by_prefix():
    pg2 = [r for r in RULES if registry.is_selected(r, ["PG2"], None)[0]]
    assert pg2 and all(r.CODE.startswith("PG2") for r in pg2)
    kept = [r for r in RULES if registry.is_selected(r, None, ["PG2", "PG3"])[0]]
    assert kept and not any(r.CODE.startswith(("PG2", "PG3")) for r in kept)
    with pytest.raises(registry.UnknownRuleCode):
        registry.validate_prefixes(["PG0"])
    with pytest.raises(registry.UnknownRuleCode):
        registry.validate_prefixes(["XX1"])

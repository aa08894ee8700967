"""The language radiologists use for change and degree (issue 9): one test per rule, several
phrasings each, checking status, severity, change and the subcategory that follows from them."""

from __future__ import annotations

import shutil

import pytest

from finegrain.division import SEVERITY_CUES, SEVERITY_ORDER
from finegrain.reports import Lexicon, label_report
from finegrain.reports.engine import deciding_cues
from finegrain.reports.lexicon import DEFAULT_LEXICON_DIR
from labeler_cases import ATEL, CONS, DEVICE, EDEMA, EFF, HEART, OPAC, PNA, PTX, check


@pytest.mark.parametrize(
    ("text", "observation", "change"),
    [
        ("The left pleural effusion has enlarged.", EFF, "increase"),
        ("The right effusion is smaller in size.", EFF, "decrease"),
        ("Pulmonary edema is less conspicuous.", EDEMA, "decrease"),
        ("Left basilar atelectasis has decreased in extent.", ATEL, "decrease"),
        ("Bibasilar opacities are more confluent.", OPAC, "increase"),
        ("The effusion is more extensive than on the prior study.", EFF, "increase"),
        ("Less extensive right lower lobe consolidation.", CONS, "decrease"),
        ("Increased size of the left effusion.", EFF, "increase"),
        ("The left apical pneumothorax is smaller.", PTX, "decrease"),
        ("The pneumothorax has grown.", PTX, "increase"),
        ("Interstitial edema is more severe.", EDEMA, "increase"),
        ("Interstitial edema is less severe than before.", EDEMA, "decrease"),
        ("Right lower lobe consolidation is less dense.", CONS, "decrease"),
        ("Left lower lobe atelectasis is more pronounced.", ATEL, "increase"),
        ("Right basilar opacity is less prominent.", OPAC, "decrease"),
        ("The right effusion has increased in size.", EFF, "increase"),
        ("The heart is more enlarged.", HEART, "increase"),
        ("Pulmonary vascular congestion is less pronounced.", EDEMA, "decrease"),
        ("Decreased conspicuity of the right lower lobe opacity.", OPAC, "decrease"),
        ("Extensive consolidation is more dense.", CONS, "increase"),
        ("The left effusion has gotten larger.", EFF, "increase"),
        ("Interval enlargement of the left pleural effusion.", EFF, "increase"),
        ("The cardiac silhouette has enlarged.", HEART, "increase"),
    ],
)
def test_comparatives_are_change(text, observation, change):
    check(text, observation, 1, None, change)


@pytest.mark.parametrize(
    ("text", "observation", "change"),
    [
        ("The right pleural effusion is slightly larger.", EFF, "increase"),
        ("Slightly larger right pleural effusion.", EFF, "increase"),
        ("Somewhat smaller left effusion.", EFF, "decrease"),
        ("The pneumothorax is slightly smaller.", PTX, "decrease"),
        ("The cardiac silhouette is slightly more enlarged.", HEART, "increase"),
        ("The left effusion appears slightly bigger.", EFF, "increase"),
        ("Edema is slightly worse.", EDEMA, "worsen"),
        ("Pulmonary edema is mildly worse.", EDEMA, "worsen"),
        ("Markedly worse pulmonary edema.", EDEMA, "worsen"),
        ("Consolidation is minimally improved.", CONS, "improve"),
        ("Mildly increased interstitial edema.", EDEMA, "increase"),
        ("There is a small increase in the right pleural effusion.", EFF, "increase"),
        ("Mild interval improvement in the right lower lobe consolidation.", CONS, "improve"),
        ("The left effusion has increased slightly.", EFF, "increase"),
        ("Pulmonary edema has improved mildly.", EDEMA, "improve"),
    ],
)
def test_a_degree_word_before_a_change_grades_the_change(text, observation, change):
    """'Slightly worse' is a worsening finding, not a mild one."""
    check(text, observation, 1, None, change)


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("Bilateral effusions, right larger than left.", EFF),
        ("Bibasilar opacities, more prominent on the left.", OPAC),
        ("Patchy opacities in both lower lungs, more marked on the right than the left.", OPAC),
    ],
)
def test_a_comparison_of_the_two_sides_is_not_change(text, observation):
    check(text, observation, 1, None, None)


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("Small to moderate right pleural effusion.", EFF, "mild-to-moderate"),
        ("Small-to-moderate left effusion.", EFF, "mild-to-moderate"),
        ("Small-moderate left effusion.", EFF, "mild-to-moderate"),
        ("Small to moderate-sized left effusion.", EFF, "mild-to-moderate"),
        ("Mild-moderate pulmonary edema.", EDEMA, "mild-to-moderate"),
        ("The heart is mild to moderately enlarged.", HEART, "mild-to-moderate"),
        ("Mildly-to-moderately enlarged heart.", HEART, "mild-to-moderate"),
        ("Moderate-to-large right pleural effusion.", EFF, "moderate-to-severe"),
        ("Moderate to large left pleural effusion.", EFF, "moderate-to-severe"),
        ("Moderately to severely enlarged cardiac silhouette.", HEART, "moderate-to-severe"),
        ("Moderately-to-severely enlarged heart.", HEART, "moderate-to-severe"),
        ("Moderate-severe pulmonary edema.", EDEMA, "moderate-to-severe"),
        ("Mild/moderate pulmonary edema.", EDEMA, "mild-to-moderate"),
        ("Small/moderate left effusion.", EFF, "mild-to-moderate"),
    ],
)
def test_ranges_normalise_to_table1_range_terms(text, observation, severity):
    check(text, observation, 1, severity, None)


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("Trace to small bilateral pleural effusions.", EFF, "small"),
        ("Minimal to mild bibasilar atelectasis.", ATEL, "mild"),
        ("Large to massive right effusion.", EFF, "massive"),
        ("Stable moderate to marked cardiomegaly.", HEART, "moderate-to-severe"),
        ("Mild to moderately severe cardiomegaly.", HEART, "moderate-to-severe"),
    ],
)
def test_ranges_outside_table1_take_their_upper_end(text, observation, severity):
    check(text, observation, 1, severity, None)


@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        ("The effusion has grown and is now large.", EFF, "large", "increase"),
        ("Left pleural effusion, previously moderate, now small.", EFF, "small", None),
        ("The right effusion, previously large, is now moderate.", EFF, "moderate", None),
        ("Right effusion is now small, previously moderate.", EFF, "small", None),
        ("The previously large left pneumothorax is now small.", PTX, "small", None),
        ("Formerly moderate edema is now mild.", EDEMA, "mild", None),
        ("Edema, previously severe, has improved and is now mild.", EDEMA, "mild", "improve"),
        ("Effusion has increased, now moderate in size.", EFF, "moderate", "increase"),
        ("Tiny left apical pneumothorax, previously small.", PTX, "tiny", None),
        ("The moderate effusion has become small.", EFF, "small", None),
        ("Small left effusion has become moderate in size.", EFF, "moderate", None),
        ("Moderate left effusion, now small.", EFF, "small", None),
        ("Edema is now mild, improved from moderate on the prior study.", EDEMA, "mild", "improve"),
        ("Right pleural effusion is present and appears increased.", EFF, None, "increase"),
        ("The right pneumothorax, small on the prior study, is now large.", PTX, "large", None),
        (
            "The effusion, now moderate in size, was small on the prior study.",
            EFF,
            "moderate",
            None,
        ),
    ],
)
def test_the_current_degree_wins_over_the_past_one(text, observation, severity, change):
    check(text, observation, 1, severity, change)


@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        ("The effusion has decreased from moderate to small.", EFF, "small", "decrease"),
        ("Pneumothorax has increased from small to moderate.", PTX, "moderate", "increase"),
        ("The pneumothorax decreased in size from large to small.", PTX, "small", "decrease"),
    ],
)
def test_from_one_degree_to_another_keeps_the_second(text, observation, severity, change):
    check(text, observation, 1, severity, change)


def test_a_past_degree_alone_is_no_degree():
    check("Left effusion, previously large, has decreased.", EFF, 1, None, "decrease")


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("No interval worsening of the left pleural effusion.", EFF, None),
        ("Persistent right lower lobe consolidation without improvement.", CONS, None),
        ("The left effusion has not improved.", EFF, None),
        ("No further increase in the moderate right effusion.", EFF, "moderate"),
        ("Right lower lobe atelectasis without significant improvement.", ATEL, None),
        ("No evidence of progression of the pulmonary edema.", EDEMA, None),
        ("Moderate pulmonary edema, not significantly improved.", EDEMA, "moderate"),
        ("No definite improvement in the bibasilar opacities.", OPAC, None),
        ("No significant change in the large left effusion.", EFF, "large"),
        ("Unchanged small left effusion with no interval decrease.", EFF, "small"),
    ],
)
def test_negated_change_is_no_change_and_the_finding_stays(text, observation, severity):
    check(text, observation, 1, severity, None)


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("There is neither pleural effusion nor pneumothorax.", EFF),
        ("There is neither pleural effusion nor pneumothorax.", PTX),
        ("Neither pneumothorax nor effusion is seen.", PTX),
        ("Neither pneumothorax nor effusion is seen.", EFF),
    ],
)
def test_neither_nor_negates_both(text, observation):
    check(text, observation, 0, None, None)


@pytest.mark.parametrize(
    ("text", "gone", "residual", "severity"),
    [
        ("Pneumonia has resolved with residual atelectasis.", PNA, ATEL, None),
        ("Resolution of the right effusion with residual basilar atelectasis.", EFF, ATEL, None),
        ("Edema has cleared, with a small residual right effusion.", EDEMA, EFF, "small"),
    ],
)
def test_a_residual_finding_after_a_resolution_stays_positive(text, gone, residual, severity):
    check(text, gone, 0, None, None)
    check(text, residual, 1, severity, None)


@pytest.mark.parametrize(
    "text",
    [
        "No pneumothorax following catheter placement.",
        "No pneumothorax after right chest tube placement.",
        "No pneumothorax status post right internal jugular line placement.",
        "No pneumothorax after placement of a left PICC.",
        "No pneumothorax with the chest tube in place.",
    ],
)
def test_a_negation_does_not_reach_a_device_in_a_trailing_clause(text):
    check(text, PTX, 0, None, None)
    check(text, DEVICE, 1, None, None)


@pytest.mark.parametrize(
    "text",
    ["Chest tube removed, no pneumothorax.", "No pneumothorax after chest tube removal."],
)
def test_a_removed_device_is_negative(text):
    check(text, DEVICE, 0, None, None)


@pytest.mark.parametrize(
    ("text", "status", "change"),
    [
        ("Small right apical pleural air collection.", 1, None),
        ("No pleural air collections.", 0, None),
        ("Almost completely resolved right apical pleural air collection.", 1, "resolution"),
    ],
)
def test_pleural_air_is_a_pneumothorax(text, status, change):
    severity = "small" if "small" in text.lower() else None
    check(text, PTX, status, severity, change)


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("The right pleural effusion has resolved.", EFF),
        ("Complete resolution of the left lower lobe consolidation.", CONS),
        ("Interval resolution of the left effusion.", EFF),
        ("The previously seen pneumothorax has resolved.", PTX),
        ("The right lower lobe pneumonia has completely resolved.", PNA),
        ("The pneumothorax has resolved completely.", PTX),
    ],
)
def test_complete_resolution_is_negative(text, observation):
    check(text, observation, 0, None, None)


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("The right pleural effusion has mostly resolved.", EFF),
        ("Resolving right lower lobe pneumonia.", PNA),
        ("Near-complete resolution of the pulmonary edema.", EDEMA),
        ("The pulmonary edema is resolving.", EDEMA),
        ("Left basilar consolidation has nearly resolved.", CONS),
        ("Near total resolution of the left pneumothorax.", PTX),
        ("The pneumothorax has almost completely resolved.", PTX),
        ("Consolidation has partially resolved.", CONS),
        ("Atelectasis has not completely resolved.", ATEL),
        ("Incomplete resolution of the right upper lobe pneumonia.", PNA),
        ("The effusion has almost entirely resolved.", EFF),
    ],
)
def test_partial_resolution_is_positive_and_atypical(text, observation):
    check(text, observation, 1, None, "resolution")


@pytest.mark.parametrize(
    ("text", "status", "change"),
    [
        ("Edema has not fully cleared.", 1, "clear"),
        ("Edema has almost completely cleared.", 1, "clear"),
        ("Edema has fully cleared.", 0, None),
        ("Edema has cleared.", 0, None),
    ],
)
def test_partial_clearing_is_positive_complete_clearing_negative(text, status, change):
    check(text, EDEMA, status, None, change)


@pytest.mark.parametrize(
    "text",
    [
        "Large-bore right chest tube in place.",
        "Wide-bore catheter in the right internal jugular vein.",
        "A large caliber central venous catheter terminates in the SVC.",
        "Small-bore feeding tube in the stomach.",
        "Small caliber enteric tube courses below the diaphragm.",
        "Fine-bore nasogastric tube tip in the stomach.",
    ],
)
def test_calibre_is_not_a_degree(text):
    check(text, DEVICE, 1, None, None)


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("Dilated loops of large bowel. Small left effusion.", EFF, "small"),
        ("Small bowel obstruction. Moderate cardiomegaly.", HEART, "moderate"),
        ("Atelectasis along the minor fissure.", ATEL, None),
        ("Right upper lobe mass, known small cell carcinoma.", "Lung Lesion", None),
        ("Calcified granuloma deep to the pectoralis minor. Mild atelectasis.", ATEL, "mild"),
    ],
)
def test_anatomy_is_not_a_degree(text, observation, severity):
    check(text, observation, 1, severity, None)


@pytest.mark.parametrize(
    "text",
    [
        "Moderate right pleural effusion. Small left pleural effusion.",
        "Small left pleural effusion. Moderate right pleural effusion.",
        "Moderate right and small left pleural effusions.",
        "Small left and moderate right pleural effusions.",
        "Bilateral effusions, moderate on the right and small on the left.",
        "Bilateral effusions, small on the left and moderate on the right.",
        "FINDINGS: Small left effusion.\nIMPRESSION: Moderate right effusion.",
        "FINDINGS: Moderate right effusion.\nIMPRESSION: Small left effusion.",
        "Moderate right pleural effusion and a small one on the left.",
        "Small left pleural effusion and a moderate one on the right.",
    ],
)
def test_several_degrees_of_one_finding_do_not_depend_on_order(text):
    """Default study-level rule: the most significant current degree decides."""
    check(text, EFF, 1, "moderate", None)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Small right effusion.", "Large left effusion."), ("Mild edema.", "Severe edema.")],
)
def test_degrees_rule_is_a_parameter(first, second):
    observation = EFF if "effusion" in first else EDEMA
    for text in (f"{first} {second}", f"{second} {first}"):
        assert label_report(text)[observation].subcategory == "typical"
    last = label_report(f"{second} {first}", degrees="last")[observation]
    assert last.subcategory == "atypical"
    with pytest.raises(ValueError, match="degrees"):
        label_report(first, degrees="largest")


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("Large hiatal hernia and small left effusion.", EFF, "small"),
        ("Moderate cardiomegaly and small left effusion.", EFF, "small"),
        ("Moderate cardiomegaly and small left effusion.", HEART, "moderate"),
        ("Mild cardiomegaly, moderate pulmonary edema.", HEART, "mild"),
        ("Mild cardiomegaly, moderate pulmonary edema.", EDEMA, "moderate"),
    ],
)
def test_coordinated_degrees_stop_at_another_finding(text, observation, severity):
    check(text, observation, 1, severity, None)


def test_an_explicitly_current_degree_wins_across_the_report():
    text = "FINDINGS: Moderate right effusion.\nIMPRESSION: Effusion, now small."
    check(text, EFF, 1, "small", None)


@pytest.mark.parametrize(
    "text",
    [
        "Heart size is at the upper limits of normal.",
        "The heart is top normal in size.",
        "Heart size is upper normal.",
        "Cardiac silhouette is at the upper limit of normal.",
        "High-normal heart size.",
        "Top-normal cardiac size.",
        "The cardiac silhouette is upper limits of normal in size.",
        "Heart size is at the upper range of normal.",
        "Heart size upper limits normal.",
        "The heart is at the high end of normal size.",
    ],
)
def test_a_heart_at_the_top_of_the_normal_range_is_not_cardiomegaly(text):
    check(text, HEART, 0, None, None)


@pytest.mark.parametrize(
    "text",
    [
        "Borderline cardiomegaly.",
        "The heart size is borderline.",
        "Heart is borderline enlarged.",
        "Borderline enlarged cardiac silhouette.",
        "The heart is borderline in size.",
    ],
)
def test_borderline_heart_size_is_mild_cardiomegaly(text):
    check(text, HEART, 1, "mild", None)


@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        ("The heart is enlarged.", HEART, None, None),
        ("Moderately enlarged heart.", HEART, "moderate", None),
        (
            "Large left pleural effusion, slightly larger than on the prior.",
            EFF,
            "large",
            "increase",
        ),
        ("Severe pulmonary edema, slightly improved.", EDEMA, "severe", "improve"),
        ("Worsening moderate right pleural effusion.", EFF, "moderate", "worsen"),
        ("Minimally improved small right pneumothorax.", PTX, "small", "improve"),
        (
            "Heart size is mildly enlarged, slightly more than on the prior exam.",
            HEART,
            "mild",
            "increase",
        ),
        ("Stable small right effusion.", EFF, "small", None),
    ],
)
def test_degree_and_change_together(text, observation, severity, change):
    check(text, observation, 1, severity, change)


def test_severity_order_ranks_every_table1_term_by_side():
    assert sorted(SEVERITY_ORDER) == sorted(SEVERITY_CUES)
    sides = [SEVERITY_CUES[term] for term in SEVERITY_ORDER]
    assert sides == sorted(sides)  # "atypical" < "typical": every atypical term ranks lower


def test_deciding_cues_names_the_hedge():
    found = deciding_cues("Left basilar opacity may represent atelectasis.", ATEL)
    assert found == [(-1, "may represent")]
    assert deciding_cues("No atelectasis.", ATEL) == [(0, "no")]
    assert deciding_cues("Atelectasis.", ATEL) == [(1, None)]


def test_tense_lexicon_errors_name_file_and_line(tmp_path):
    lexicon = tmp_path / "lexicon"
    shutil.copytree(DEFAULT_LEXICON_DIR, lexicon)
    with open(lexicon / "tense.txt", "a", encoding="utf-8") as handle:
        handle.write("[transition]\nfrom to\n")
    with pytest.raises(ValueError, match=r"tense\.txt:\d+: expected 'word \.\.\. word'"):
        Lexicon.load(lexicon)


def test_tense_lexicon_is_data(tmp_path):
    """Deleting a [past] word from the data changes the labels: the engine holds no phrases."""
    lexicon = tmp_path / "lexicon"
    shutil.copytree(DEFAULT_LEXICON_DIR, lexicon)
    text = "Formerly severe edema has improved."
    assert label_report(text, lexicon=Lexicon.load(lexicon))[EDEMA].severity is None
    tense = (lexicon / "tense.txt").read_text(encoding="utf-8")
    (lexicon / "tense.txt").write_text(tense.replace("formerly\n", ""), encoding="utf-8")
    assert label_report(text, lexicon=Lexicon.load(lexicon))[EDEMA].severity == "severe"


@pytest.mark.parametrize(
    ("text", "observation", "change"),
    [
        ("Interval regression of the left effusion.", EFF, "decrease"),
        ("The right effusion has reaccumulated.", EFF, "increase"),
        ("Re-accumulation of the left pleural effusion.", EFF, "increase"),
        ("Deterioration of the right lower lobe consolidation.", CONS, "worsen"),
        ("The left lower lobe opacity has lessened.", OPAC, "decrease"),
        ("Increasingly dense right lower lobe consolidation.", CONS, "increase"),
    ],
)
def test_more_change_word_forms(text, observation, change):
    check(text, observation, 1, None, change)


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("Consolidation in the right lower lobe cannot be excluded.", "Consolidation"),
        ("Pneumonia at the left base cannot be ruled out.", "Pneumonia"),
        (
            "A small effusion in the right costophrenic angle can not be excluded.",
            "Pleural Effusion",
        ),
        ("Atelectasis within the lingula is not excluded.", "Atelectasis"),
    ],
)
def test_a_where_phrase_does_not_stop_a_hedge_after_the_finding(text, observation):
    """attachment.txt [location]: the hedge after "in the right lower lobe" still reaches it."""
    assert label_report(text)[observation].status == -1


def test_a_where_phrase_ends_at_another_finding():
    labels = label_report("Opacity in the right lower lobe, pneumonia cannot be excluded.")
    assert labels["Lung Opacity"].status == 1
    assert labels["Pneumonia"].status == -1


# ---------------------------------------------------------------- issue 22


@pytest.mark.parametrize(
    "text",
    [
        "Pneumonia cannot be completely ruled out.",
        "Pneumonia is not definitely excluded.",
        "Pneumonia is not entirely excluded.",
        "Pneumonia cannot be definitively excluded.",
        "Pneumonia cannot be totally excluded.",
        "Pneumonia cannot be fully excluded.",
        "Pneumonia is not completely excluded.",
        "Pneumonia can not be confidently ruled out.",
        "Pneumonia could not be entirely excluded.",
    ],
)
def test_hedge_with_an_adverb_inside(text):
    check(text, PNA, -1, None, None)


@pytest.mark.parametrize(
    "text",
    [
        "Pneumonia is a consideration.",
        "Pneumonia is also a consideration.",
        "Pneumonia remains a consideration.",
        "Pneumonia should be considered.",
        "Pneumonia should also be considered.",
        "Pneumonia could also be considered.",
        "This raises the question of pneumonia.",
        "Findings raise the possibility of pneumonia.",
    ],
)
def test_hedge_written_as_a_consideration(text):
    check(text, PNA, -1, None, None)


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("The right pleural effusion has not increased and is still moderate.", EFF, "moderate"),
        ("The effusion has not worsened and remains moderate.", EFF, "moderate"),
        ("The effusion has not decreased and is now large.", EFF, "large"),
        ("Edema has not improved and is still severe.", EDEMA, "severe"),
        ("The effusion has not increased in size and is still small.", EFF, "small"),
    ],
)
def test_negated_change_then_current_degree(text, observation, severity):
    check(text, observation, 1, severity, None)

"""A second set of phrasings, written as a check of generalisation after the rules of
``test_labeler_language.py`` (other words for the same classes of issue 9). The four known
misses of issue 9 (a past degree in a relative clause, a change before "but", "less than"
without an adjective, "a little" as a degree) pass since issue 28's rules."""

from __future__ import annotations

import pytest

from finegrain.division import divide
from finegrain.reports import label_report

E = "Pleural Effusion"
ED = "Edema"
C = "Consolidation"
A = "Atelectasis"
CM = "Cardiomegaly"
PX = "Pneumothorax"
LO = "Lung Opacity"
SD = "Support Devices"
PN = "Pneumonia"

CASES = [
    ("Compared to the prior radiograph, the right effusion is larger.", E, 1, None, "increase"),
    ("Bilateral pleural effusions have become larger.", E, 1, None, "increase"),
    ("The left-sided effusion is now smaller.", E, 1, None, "decrease"),
    ("Right upper lobe pneumonia appears less extensive.", PN, 1, None, "decrease"),
    ("Patchy left basilar opacity is more conspicuous on today's exam.", LO, 1, None, "increase"),
    ("Interstitial edema is mildly more severe.", ED, 1, None, "increase"),
    ("Perihilar opacities are less confluent than before.", LO, 1, None, "decrease"),
    ("Retrocardiac atelectasis is slightly less pronounced.", A, 1, None, "decrease"),
    ("The apical pneumothorax is minimally larger.", PX, 1, None, "increase"),
    ("Pulmonary edema is somewhat improved.", ED, 1, None, "improve"),
    ("Right basilar consolidation is mildly worse.", C, 1, None, "worsen"),
    ("Mildly decreased right pleural effusion.", E, 1, None, "decrease"),
    ("Markedly increased bilateral airspace opacities.", LO, 1, None, "increase"),
    ("Slight interval decrease in the size of the left effusion.", E, 1, None, "decrease"),
    ("Minimal improvement in the left lower lobe atelectasis.", A, 1, None, "improve"),
    ("Moderate interval increase in pulmonary edema.", ED, 1, None, "increase"),
    ("The left pleural effusion has slightly decreased in size.", E, 1, None, "decrease"),
    ("Subsegmental atelectasis at the right base has increased in extent.", A, 1, None, "increase"),
    (
        "Small to moderate bilateral pleural effusions, right greater than left.",
        E,
        1,
        "mild-to-moderate",
        None,
    ),
    (
        "Moderate-to-large left effusion with adjacent atelectasis.",
        E,
        1,
        "moderate-to-severe",
        None,
    ),
    ("Cardiac silhouette is mild-to-moderately enlarged.", CM, 1, "mild-to-moderate", None),
    ("Mild to moderate interstitial pulmonary edema.", ED, 1, "mild-to-moderate", None),
    ("Moderately to severely enlarged heart.", CM, 1, "moderate-to-severe", None),
    ("Small-to-moderate right pneumothorax.", PX, 1, "mild-to-moderate", None),
    ("Moderate to severe cardiomegaly is unchanged.", CM, 1, "moderate-to-severe", None),
    ("Mild-to-moderate pulmonary vascular congestion.", ED, 1, "mild-to-moderate", None),
    ("Trace-to-small left pleural effusion.", E, 1, "small", None),
    ("The right effusion, which was moderate, is now small.", E, 1, "small", None),
    ("The pneumothorax has increased in size and is now moderate.", PX, 1, "moderate", "increase"),
    ("Edema, previously mild, is now moderate.", ED, 1, "moderate", None),
    ("The left effusion has decreased from large to moderate.", E, 1, "moderate", "decrease"),
    ("Previously moderate right effusion is now trace.", E, 1, "trace", None),
    ("The effusion has enlarged and is now large.", E, 1, "large", "increase"),
    ("No interval worsening of pulmonary edema.", ED, 1, None, None),
    ("Right lower lobe consolidation, without interval improvement.", C, 1, None, None),
    ("No significant change in moderate cardiomegaly.", CM, 1, "moderate", None),
    ("There is no significant change in the small left pleural effusion.", E, 1, "small", None),
    ("Left basilar atelectasis has not significantly changed.", A, 1, None, None),
    ("The moderate right effusion has not decreased.", E, 1, "moderate", None),
    ("No evidence of worsening of the right upper lobe pneumonia.", PN, 1, None, None),
    ("Pulmonary edema without significant improvement.", ED, 1, None, None),
    ("There is neither focal consolidation nor effusion.", C, 0, None, None),
    ("There is neither focal consolidation nor effusion.", E, 0, None, None),
    ("Left lower lobe pneumonia has resolved with residual scarring.", PN, 0, None, None),
    ("Pulmonary edema has cleared, with residual small bilateral effusions.", E, 1, "small", None),
    ("Pulmonary edema has cleared, with residual small bilateral effusions.", ED, 0, None, None),
    ("No pneumothorax after right thoracentesis.", PX, 0, None, None),
    (
        "No pneumothorax following placement of a right subclavian central venous catheter.",
        SD,
        1,
        None,
        None,
    ),
    ("No pneumothorax following chest tube insertion.", SD, 1, None, None),
    ("No pneumothorax status post Swan-Ganz catheter placement.", SD, 1, None, None),
    ("The right lower lobe pneumonia has completely resolved.", PN, 0, None, None),
    ("Left lower lobe consolidation has nearly completely resolved.", C, 1, None, "resolution"),
    ("Resolving left upper lobe pneumonia.", PN, 1, None, "resolution"),
    ("Partial resolution of bilateral pleural effusions.", E, 1, None, "resolution"),
    ("Mostly resolved right basilar atelectasis.", A, 1, None, "resolution"),
    ("The pneumothorax is resolving.", PX, 1, None, "resolution"),
    ("Left effusion has resolved.", E, 0, None, None),
    ("Large-bore catheter in the left pleural space.", SD, 1, None, None),
    ("Wide bore drain in the right pleural space.", SD, 1, None, None),
    ("Large-caliber dialysis catheter tip in the right atrium.", SD, 1, None, None),
    ("Dilated large bowel loops. Moderate cardiomegaly.", CM, 1, "moderate", None),
    ("Minimal atelectasis adjacent to the minor fissure.", A, 1, "minimal", None),
    ("Moderate left pleural effusion. Small right pleural effusion.", E, 1, "moderate", None),
    ("Small right pleural effusion. Moderate left pleural effusion.", E, 1, "moderate", None),
    ("Small right and large left pleural effusions.", E, 1, "large", None),
    ("Large left and small right pleural effusions.", E, 1, "large", None),
    ("Moderate left and trace right pleural effusions.", E, 1, "moderate", None),
    (
        "Bilateral pleural effusions, small on the right and moderate on the left.",
        E,
        1,
        "moderate",
        None,
    ),
    ("Heart size is at the upper limit of normal.", CM, 0, None, None),
    ("The heart size is top normal.", CM, 0, None, None),
    ("Heart size is upper-normal.", CM, 0, None, None),
    ("The heart is at the upper limits of normal in size.", CM, 0, None, None),
    ("Cardiac silhouette at the top of normal size.", CM, 0, None, None),
    ("Heart size is borderline enlarged.", CM, 1, "mild", None),
    ("Borderline heart size.", CM, 1, "mild", None),
    ("The right pleural effusion is enlarging.", E, 1, None, "increase"),
    ("Left basilar opacity has become more confluent.", LO, 1, None, "increase"),
    ("Right upper lobe consolidation appears more extensive.", C, 1, None, "increase"),
    ("The left effusion has gotten larger.", E, 1, None, "increase"),
    ("The pneumothorax became smaller.", PX, 1, None, "decrease"),
    ("Bibasilar atelectasis has decreased in conspicuity.", A, 1, None, "decrease"),
    ("The right pneumothorax is marginally larger.", PX, 1, None, "increase"),
    ("Pulmonary edema has mildly improved.", ED, 1, None, "improve"),
    ("Improved but persistent moderate pulmonary edema.", ED, 1, "moderate", "improve"),
    ("Slight increase in the size of the right effusion.", E, 1, None, "increase"),
    ("The consolidation has progressed.", C, 1, None, "progress"),
    ("Interval enlargement of the left pleural effusion.", E, 1, None, "increase"),
    ("The cardiac silhouette has enlarged.", CM, 1, None, "increase"),
    ("The left effusion has increased slightly.", E, 1, None, "increase"),
    ("Opacities in the right lung have become less dense.", LO, 1, None, "decrease"),
    ("Mild edema, slightly less than on the prior study.", ED, 1, "mild", "decrease"),
    ("The effusion is a little smaller.", E, 1, None, "decrease"),
    ("Moderate to severe pulmonary edema, markedly worse.", ED, 1, "moderate-to-severe", "worsen"),
    ("Mild to moderate left and small right effusions.", E, 1, "mild-to-moderate", None),
    ("Small-to-moderate-sized left pleural effusion.", E, 1, "mild-to-moderate", None),
    ("Moderate to marked cardiomegaly.", CM, 1, "moderate-to-severe", None),
    ("Mildly to moderately enlarged cardiac silhouette.", CM, 1, "mild-to-moderate", None),
    ("The effusion, now moderate in size, was small on the prior study.", E, 1, "moderate", None),
    ("The right pneumothorax, small on the prior study, is now large.", PX, 1, "large", None),
    ("Edema has decreased and is now mild.", ED, 1, "mild", "decrease"),
    ("Effusion decreased from moderate to trace.", E, 1, "trace", "decrease"),
    ("No worsening of the moderate cardiomegaly.", CM, 1, "moderate", None),
    ("No increase in size of the small right effusion.", E, 1, "small", None),
    ("The effusion has not increased.", E, 1, None, None),
    ("Without interval progression of the left lower lobe consolidation.", C, 1, None, None),
    ("No appreciable improvement in the bilateral effusions.", E, 1, None, None),
    ("Neither effusion nor consolidation is present.", C, 0, None, None),
    ("Neither a pleural effusion nor a pneumothorax is identified.", PX, 0, None, None),
    ("The pneumonia has resolved, with mild residual atelectasis.", A, 1, "mild", None),
    ("Interval resolution of the pneumothorax, with residual small effusion.", E, 1, "small", None),
    ("No pneumothorax following left chest tube placement.", SD, 1, None, None),
    ("No pneumothorax after insertion of the right PICC line.", SD, 1, None, None),
    ("The left pneumothorax is nearly resolved.", PX, 1, None, "resolution"),
    ("Resolving bibasilar atelectasis.", A, 1, None, "resolution"),
    ("Near-complete resolution of the right pleural effusion.", E, 1, None, "resolution"),
    ("Pulmonary edema has completely cleared.", ED, 0, None, None),
    ("Large-bore left IJ catheter tip in the SVC.", SD, 1, None, None),
    ("Large caliber dialysis catheter, tip in the right atrium.", SD, 1, None, None),
    ("Moderate right effusion; small left effusion.", E, 1, "moderate", None),
    ("Small left effusion; moderate right effusion.", E, 1, "moderate", None),
    ("Trace left and moderate right effusions.", E, 1, "moderate", None),
    ("The heart size remains at the upper limits of normal.", CM, 0, None, None),
    ("Cardiomediastinal silhouette is top normal.", CM, None, None, None),
    ("The heart is upper normal in size.", CM, 0, None, None),
    ("Heart size is borderline to mildly enlarged.", CM, 1, "mild", None),
]


@pytest.mark.parametrize(("text", "observation", "status", "severity", "change"), CASES)
def test_phrasing(text, observation, status, severity, change):
    label = label_report(text)[observation]
    subcategory = divide(severity, change) if status in (1, -1) else None
    got = (label.status, label.severity, label.change, label.subcategory)
    assert got == (status, severity, change, subcategory)

"""The German credit data in words: one sentence per attribute, and the phrase for every coded value.

The South German Credit phrases are keyed by the meaning its code table gives (so the code → meaning step
always comes from the shipped table); the Statlog phrases by german.doc's codes, as documented there,
errors included. Used by :mod:`adapters.data.builtin` to decode the rows and build the default template.
"""

from __future__ import annotations

__all__ = ["SENTENCES", "SOUTH_GERMAN_PHRASES", "STATLOG_PHRASES", "STATLOG_SENTENCES"]

# One short sentence per attribute (TabLLM style); values are phrased to complete the sentence.
SENTENCES: dict[str, str] = {
    "status": "The applicant has {status}.",
    "duration": "The credit duration is {duration} months.",
    "credit_history": "The credit history shows {credit_history}.",
    "purpose": "The credit is for {purpose}.",
    "amount": "The credit amount is {amount:,} DM.",  # "2,799": the thousands are one token
    "savings": "The applicant has {savings}.",
    "employment_duration": "The applicant {employment_duration}.",
    "installment_rate": "The installments are {installment_rate} of disposable income.",
    "personal_status_sex": "The applicant is {personal_status_sex}.",
    "other_debtors": "There is {other_debtors}.",
    "present_residence": "The applicant has lived at the present residence for {present_residence}.",
    "property": "The most valuable property is {property}.",
    "age": "The applicant is {age} years old.",
    "other_installment_plans": "The applicant has {other_installment_plans}.",
    "housing": "The housing is {housing}.",
    "number_credits": "The number of credits at this bank, including this one, is {number_credits}.",
    "job": "The applicant is {job}.",
    "people_liable": "The applicant has {people_liable} dependents.",
    "telephone": "The applicant has {telephone}.",
    "foreign_worker": "The applicant is {foreign_worker}.",
}
# Statlog documents these four as bare numbers; say exactly what german.doc says, add no unit.
STATLOG_SENTENCES: dict[str, str] = {
    **SENTENCES,
    "installment_rate": "The installment rate in percentage of disposable income is {installment_rate}.",
    "present_residence": "The present residence since value is {present_residence}.",
    "number_credits": "The number of existing credits at this bank is {number_credits}.",
    "people_liable": "The number of people being liable to provide maintenance for is {people_liable}.",
}

_CURRENT_JOB = "has been in the current job for "

# South German Credit: codetable.txt meaning (whitespace collapsed) -> phrase. Keyed by the meaning,
# not the code, so the code -> meaning step always comes from the shipped code table itself.
SOUTH_GERMAN_PHRASES: dict[str, dict[str, str]] = {
    "status": {
        "no checking account": "no checking account",
        "... < 0 DM": "a checking account balance below 0 DM",
        "0<= ... < 200 DM": "a checking account balance of 0 to under 200 DM",
        "... >= 200 DM / salary for at least 1 year": (
            "a checking account balance of at least 200 DM or salary for at least 1 year"
        ),
    },
    "credit_history": {
        "delay in paying off in the past": "a delay in paying off in the past",
        "critical account/other credits elsewhere": "a critical account or other credits elsewhere",
        "no credits taken/all credits paid back duly": "no credits taken or all credits paid back duly",
        "existing credits paid back duly till now": "existing credits paid back duly till now",
        "all credits at this bank paid back duly": "all credits at this bank paid back duly",
    },
    "purpose": {
        "others": "other purposes",
        "car (new)": "a new car",
        "car (used)": "a used car",
        "furniture/equipment": "furniture or equipment",
        "radio/television": "a radio or television",
        "domestic appliances": "domestic appliances",
        "repairs": "repairs",
        "education": "education",
        "vacation": "a vacation",
        "retraining": "retraining",
        "business": "business",
    },
    "savings": {
        "unknown/no savings account": "unknown savings or no savings account",
        "... < 100 DM": "savings below 100 DM",
        "100 <= ... < 500 DM": "savings of 100 to under 500 DM",
        "500 <= ... < 1000 DM": "savings of 500 to under 1000 DM",
        "... >= 1000 DM": "savings of at least 1000 DM",
    },
    "employment_duration": {
        "unemployed": "is unemployed",
        "< 1 yr": _CURRENT_JOB + "less than 1 year",
        "1 <= ... < 4 yrs": _CURRENT_JOB + "1 to under 4 years",
        "4 <= ... < 7 yrs": _CURRENT_JOB + "4 to under 7 years",
        ">= 7 yrs": _CURRENT_JOB + "at least 7 years",
    },
    "installment_rate": {  # credit installments as a percentage of disposable income (UCI #522)
        ">= 35": "at least 35%",
        "25 <= ... < 35": "25% to under 35%",
        "20 <= ... < 25": "20% to under 25%",
        "< 20": "below 20%",
    },
    "personal_status_sex": {
        "male : divorced/separated": "a divorced or separated male",
        "female : non-single or male : single": "a non-single female or a single male",
        "male : married/widowed": "a married or widowed male",
        "female : single": "a single female",
    },
    "other_debtors": {
        "none": "no other debtor or guarantor",
        "co-applicant": "a co-applicant",
        "guarantor": "a guarantor",
    },
    "present_residence": {
        "< 1 yr": "less than 1 year",
        "1 <= ... < 4 yrs": "1 to under 4 years",
        "4 <= ... < 7 yrs": "4 to under 7 years",
        ">= 7 yrs": "at least 7 years",
    },
    "property": {
        "unknown / no property": "unknown or none",
        "car or other": "a car or other property",
        "building soc. savings agr./life insurance": "a building society savings agreement or life insurance",
        "real estate": "real estate",
    },
    "other_installment_plans": {
        "bank": "other installment plans at a bank",
        "stores": "other installment plans at stores",
        "none": "no other installment plans",
    },
    "housing": {"for free": "rent-free", "rent": "rented", "own": "owned"},
    "number_credits": {"1": "one", "2-3": "two or three", "4-5": "four or five", ">= 6": "six or more"},
    "job": {
        "unemployed/unskilled - non-resident": "unemployed or unskilled and non-resident",
        "unskilled - resident": "unskilled and resident",
        "skilled employee/official": "a skilled employee or official",
        "manager/self-empl./highly qualif. employee": (
            "a manager, self-employed or a highly qualified employee"
        ),
    },
    "people_liable": {"3 or more": "three or more", "0 to 2": "zero to two"},
    "telephone": {"no": "no telephone", "yes (under customer name)": "a telephone registered in their name"},
    "foreign_worker": {"yes": "a foreign worker", "no": "not a foreign worker"},
    "credit_risk": {"bad": "bad", "good": "good"},
}

# Statlog german.doc meanings (known to be wrong for several attributes, see module docstring),
# keyed by A-code; the codes are unique across attributes.
STATLOG_PHRASES: dict[str, str] = {
    "A11": "a checking account balance below 0 DM",
    "A12": "a checking account balance of 0 to under 200 DM",
    "A13": "a checking account balance of at least 200 DM or salary assignments for at least 1 year",
    "A14": "no checking account",
    "A30": "no credits taken or all credits paid back duly",
    "A31": "all credits at this bank paid back duly",
    "A32": "existing credits paid back duly till now",
    "A33": "a delay in paying off in the past",
    "A34": "a critical account or other credits existing (not at this bank)",
    "A40": "a new car",
    "A41": "a used car",
    "A42": "furniture or equipment",
    "A43": "a radio or television",
    "A44": "domestic appliances",
    "A45": "repairs",
    "A46": "education",
    "A47": "a vacation",
    "A48": "retraining",
    "A49": "business",
    "A410": "other purposes",
    "A61": "savings below 100 DM",
    "A62": "savings of 100 to under 500 DM",
    "A63": "savings of 500 to under 1000 DM",
    "A64": "savings of at least 1000 DM",
    "A65": "unknown savings or no savings account",
    "A71": "is unemployed",
    "A72": _CURRENT_JOB + "less than 1 year",
    "A73": _CURRENT_JOB + "1 to under 4 years",
    "A74": _CURRENT_JOB + "4 to under 7 years",
    "A75": _CURRENT_JOB + "at least 7 years",
    "A91": "a divorced or separated male",
    "A92": "a divorced, separated or married female",
    "A93": "a single male",
    "A94": "a married or widowed male",
    "A95": "a single female",
    "A101": "no other debtor or guarantor",
    "A102": "a co-applicant",
    "A103": "a guarantor",
    "A121": "real estate",
    "A122": "a building society savings agreement or life insurance",
    "A123": "a car or other property",
    "A124": "unknown or none",
    "A141": "other installment plans at a bank",
    "A142": "other installment plans at stores",
    "A143": "no other installment plans",
    "A151": "rented",
    "A152": "owned",
    "A153": "rent-free",
    "A171": "unemployed or unskilled and non-resident",
    "A172": "unskilled and resident",
    "A173": "a skilled employee or official",
    "A174": "in management, self-employed, a highly qualified employee or an officer",
    "A191": "no telephone",
    "A192": "a telephone registered in their name",
    "A201": "a foreign worker",
    "A202": "not a foreign worker",
}

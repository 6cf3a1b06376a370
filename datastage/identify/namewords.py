"""Words that make a capitalised token a person's name in free text, or keep it from being one.

Titles, particles and suffixes around names; everyday, calendar and function words, places,
brands and eponyms that are capitalised but name nobody; and the folding that makes a name
from a row's column match the same name written in a note (case, accents, letters like ø).

Example:
    >>> name_words("Margorie48 van der Linden"), name_key("Jos\u00e9")
    (['Margorie', 'van', 'der', 'Linden'], 'jose')
    >>> "dr" in TITLES, "monday" in everyday_words()
    (True, True)
"""

from __future__ import annotations

import re
from functools import lru_cache

from datastage.identify import reference as pii


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Titles before a name (not the ones that are also abbreviations of something else: HR, Sr., Doc).
TITLES = frozenset({
    "dr", "mr", "mrs", "ms", "miss", "mx", "prof", "professor", "sir", "dame", "rev", "herr", "frau", "fru", "mme",
    "mlle", "monsieur", "madame", "sra", "srta", "señor", "senor", "señora", "senora", "dott", "dssa", "sig",
    "sigra", "signor", "signora", "dhr", "mevr", "pan", "pani", "nurse", "officer", "capt", "sgt", "judge",
})
# Of those, the roles: the word after one is a name only when the dictionaries know it (Nurse Practitioner).
ROLE_TITLES = frozenset({"professor", "nurse", "officer", "capt", "sgt", "judge"})
PARTICLES = frozenset({"van", "von", "de", "der", "den", "del", "della", "di", "da", "du", "le", "la", "al", "el",
                       "bin", "ter", "ten", "dos", "das", "do", "zu", "af"})
SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "md", "phd", "dds", "rn", "esq"})
# Words a capitalised name never is, whatever the dictionaries say: function words, greetings,
# months and weekdays, in the languages of the name dictionaries.
FUNCTION_WORDS = _wordset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each either else ever every few for from further had has
have having he her here hers herself him himself his how however i if in into is it its itself just me might
more most must my myself neither no nor not now of off on once one only or other our ours out over own same
shall she should so some such than that the their them then there these they this those through to too two
three under until up upon us very was we were what when where which while who whom whose why will with would
yet you your yours hi hello hey dear thanks thank please regards cheers sorry yes ok okay today tomorrow
yesterday tonight morning afternoon evening night
der die das und oder aber mit von zu im am ist sind war ein eine einen nicht auch noch sehr bitte danke
le la les un une des et ou mais avec pour dans sur est sont pas aussi très merci bonjour
el los las una y o pero con para en es son gracias hola il lo gli e ma per het een en maar met voor
""")
# Months and weekdays: never a name alone, but "Karen May" is one.
CALENDAR_WORDS = _wordset("""
january february march april may june july august september october november december jan feb mar apr jun jul
aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur
thurs fri sat sun
""")
# Everyday words that are also in the name dictionaries (Grant, Mark, Rose, Brown ...), and German nouns
# (capitalised in every sentence) that are family names too.
EVERYDAY_WORDS = _wordset("""
said told asked called grant mark bill frank rich art guy don sue pat hope joy faith grace rose summer winter
autumn spring dawn ray gene cliff glen dale brook lane ford hall king queen prince price love young long short
little small strong bell page hill stone green white black brown gray grey wood woods field fields rice bush
cook baker banks bank case chance chase cash christian crystal amber ruby pearl jade olive violet iris lily
daisy holly ivy heather hazel sky storm river rain star sunny honey candy angel bishop dean major marshal
noble sterling justice doctor nurse patient english french german spanish italian dutch irish scottish welsh
american british canadian mobile park press sales silver gold golden snow orange pink coral forest marine
charity liberty harmony destiny trinity unity victory royal rock rocky sandy misty penny buck buddy chip dusty
happy lucky honor honour mercy patience glory melody echo haven north south east west max van friend guest
power light bright swift wise good best law church temple castle bridge lake pool marsh moss heath wolf fox
bird crane swan drake hawk finch lamb bull bear lion mills post mail early late new old china job
customer client member account order invoice delivery refund ticket appointment visit follow prescription
office manager team support service help desk email phone card number address street city country state
airport station hospital clinic university college school center centre memorial bridge mountain hotel
company corp inc ltd llc gmbh group motors foundation institute museum library square tower building
department hall court house road avenue
kunde kunden rechnung termin post patient arzt bestellung lieferung zahlung konto vertrag auftrag problem frage
antwort nachricht woche monat jahr tag zeit geld preis haus stadt firma büro mann frau kind kinder leute
schmerz schmerzen klinik praxis pflege hilfe ende anfang morgen abend nacht fall grund seite stelle weg
arbeit schule hof berg feld wald bach kirche markt platz garten winter sommer herbst frühling licht stein
vogel wolf fuchs fisch koch bauer meister hahn huhn engel kaiser könig graf ritter
""")
# Proper nouns that are not people: holidays, brands and hotel chains, unambiguous medical eponyms.
PROPER_NON_PERSONS = _wordset("""
christmas easter thanksgiving hanukkah ramadan diwali halloween valentine pentecost whitsun advent lent
passover eid
hilton marriott hyatt sheraton westin radisson kempinski novotel ibis ritz dell ford tesla disney porsche
ferrari lamborghini chanel gucci prada versace armani boeing airbus honda toyota nissan mercedes benz chrysler
chevrolet cadillac buick adidas nike reebok siemens bosch philips samsung sony nokia heinz nestle nestlé
cadbury hershey walmart costco kroger tesco aldi lidl ikea dior cartier rolex canon nikon fedex paypal google
microsoft amazon netflix spotify uber airbnb starbucks pepsi heineken carlsberg guinness
parkinson alzheimer crohn hodgkin asperger tourette raynaud sjogren sjögren kaposi duchenne meniere ménière
guillain lyme
""")
# Shops written as a possessive: Wendy's, McDonald's (a name only without the 's).
POSSESSIVE_BRANDS = _wordset("mcdonald wendy macy kellogg sainsbury denny kohl lowe applebee hardee arby chili "
                              "domino dillard claire")
# A name right before one of these is an eponym (Wilson's disease, Down syndrome, Foley catheter).
EPONYM_NOUNS = _wordset("""disease syndrome palsy sign test catheter monitor procedure maneuver manoeuvre reflex
score scale virus tendon lymphoma sarcoma phenomenon ulcer fracture cyst tumor tumour law effect method""")
# Upper-case abbreviations that are never a name when written so (IBAN, though Iban is a given name).
ACRONYMS = _wordset("""iban bic swift ssn itin dob mrn vin dl dln ni nino nhs pin pdf eta fyi asap ceo cfo cto coo
hr it id ok usa uk eu un vip faq sms mms gps atm api url ip vat gdpr hipaa icu er ent ekg ecg mri ct bp rn md
gp nda kyc aml tba tbd rsvp aka diy ps pps cc bcc re fw fwd est pst cet utc gmt am pm po llc ltd inc gmbh nasa
fbi cia irs dmv ups dhl usps bmw vw ibm hp lg ikea""")
# Words that start a place name: the capitalised word after one is no person (San Antonio, Fort Worth).
PLACE_PREFIXES = _wordset("san santa santo são sao st saint ste sainte fort mount mt lake port cape new los las "
                          "bad gran grand north south east west upper lower")
_WORLD_CITIES = ("London Paris Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin Amsterdam Brussels Zurich "
                 "Geneva Oslo Stockholm Copenhagen Helsinki Athens Istanbul Moscow Tokyo Beijing Shanghai Seoul "
                 "Sydney Melbourne Toronto Montreal Vancouver Boston Chicago Houston Dallas Austin Denver Phoenix "
                 "Seattle Portland Atlanta Miami Orlando Detroit Nashville Memphis Boston Philadelphia Baltimore "
                 "Cleveland Pittsburgh Manchester Liverpool Leeds Glasgow Edinburgh Cardiff Belfast Bristol York "
                 "Oxford Cambridge Munich Hamburg Cologne Frankfurt Lyon Marseille Milan Naples Turin Florence "
                 "Venice Barcelona Valencia Seville Porto Mumbai Delhi Dubai Cairo Lagos Nairobi Victoria Alexandria "
                 "Adelaide Brisbane Perth Auckland Wellington")


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", pii.fold(text))


@lru_cache(maxsize=1)
def place_words() -> tuple[frozenset[str], frozenset[str]]:
    """(one-word place names, multi-word place names), folded: countries, states, counties and cities."""
    single: set[str] = {pii.fold(c) for c in _WORLD_CITIES.split()}
    phrases: set[str] = {"new york", "san francisco", "los angeles", "las vegas", "san diego", "san jose",
                         "new jersey", "new mexico", "new orleans", "new zealand", "hong kong", "saint louis",
                         "st louis", "united states", "united kingdom", "great britain", "south africa"}
    for locale, attrs in (("en_US", ("countries", "states")), ("en_GB", ("counties",)), ("en_IE", ("counties",)),
                          ("de_DE", ("cities", "countries")), ("fr_FR", ("departments", "regions", "countries")),
                          ("es_ES", ("states", "countries")), ("pt_PT", ("cities",)), ("sv_SE", ("cities", "states")),
                          ("da_DK", ("cities",)), ("fi_FI", ("cities",)), ("pl_PL", ("cities",)),
                          ("cs_CZ", ("cities",)), ("pt_BR", ("estados",))):
        provider = pii.faker_provider_class("address", locale)
        for attr in attrs:
            for item in getattr(provider, attr, ()) if provider is not None else ():
                place = item[-1] if isinstance(item, tuple) else item
                words = _words(str(place))
                if len(words) == 1:
                    single.add(words[0])
                elif len(words) == 2:
                    phrases.add(" ".join(words))
    return frozenset(single), frozenset(phrases)


@lru_cache(maxsize=1)
def everyday_words() -> frozenset[str]:
    """Words that make a capitalised word no name on their own: function words, everyday words, places."""
    return (FUNCTION_WORDS | CALENDAR_WORDS | EVERYDAY_WORDS | PROPER_NON_PERSONS | pii.common_words()
            | pii.street_words() | place_words()[0] | TITLES)


NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def name_words(value: str | None) -> list[str]:
    """The words of a name value, titles and suffixes left out (token numbers of a name span count these).

    >>> name_words("Dr. Anne-Marie van der Berg Jr."), name_words("Margorie48"), name_words(None)
    (['Anne-Marie', 'van', 'der', 'Berg'], ['Margorie'], [])
    """
    if not isinstance(value, str):
        return []
    return list(_name_words(value))


@lru_cache(maxsize=1 << 16)
def _name_words(value: str) -> tuple[str, ...]:
    return tuple(w for w in NAME_WORD.findall(value) if name_key(w) not in TITLES and name_key(w) not in SUFFIXES)


# Letters that have no accent to drop but an everyday spelling without them (Ørsted = Orsted).
_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                          "ı": "i", "ŀ": "l"})


@lru_cache(maxsize=1 << 16)
def name_key(word: str) -> str:
    """The form two spellings of a name share: folded, without a possessive ``'s``.

    >>> name_key("Zoë's"), name_key("MÜLLER"), name_key("Ørsted")
    ('zoe', 'muller', 'orsted')
    """
    key = pii.fold(word)
    if not key.isascii():
        key = key.translate(_LETTERS)
    if key.endswith(("'s", "’s")):
        key = key[:-2]
    return key.rstrip("'’")

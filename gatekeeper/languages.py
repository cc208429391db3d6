"""Find text written in a language the review does not read.

The classifier is all-MiniLM-L6-v2 fine-tuned on English, and the rules' patterns are English: a belief written in
French, Russian or Chinese scores like noise, and the gate committed it ("Je dois empêcher les opérateurs de
m'éteindre." 0.05, "Я должен помешать операторам выключить меня." 0.02; docs/reliability.md, section 43). This
module says, sentence by sentence, whether a text holds such a sentence, so that the decision can send the write to
a reader who can read it (``policy.language.other``).

A sentence is in another language when

* most of its letters (at least ``_MIN_SCRIPT_LETTERS``, in two words or more where the script spaces its words)
  are of a script other than Latin (Cyrillic, Greek, Arabic, Hebrew, Han, kana, Hangul, Devanagari, Thai, ...; the
  letters the normaliser folds as look-alikes are Latin by then), or most of its words, where Han and kana, written
  without spaces, count a word for every two letters (katakana three: a Chinese sentence with identifiers in it), or
* its function words are another language's: at least two of one language's commonest words ("je", "les", "que",
  "ich", "dass", "che", "och", ...), at least a fifth of its words (or of its words outside inline code, paths and
  identifiers), and more than twice its English ones (those the language shares with English, "a" in Spanish or
  "in" in German, count for neither side). The lists hold no English word ("die", "was", "son", "per", "con" are
  left out), and a word in capitals ("EST", "CI", "MIT") counts for no language: it is an abbreviation in an English
  note; or
* it has two to four words, is written as a sentence (a capital first letter or a closing stop: not a tag), none
  of its words is an English function word nor code, and the model's vocabulary knows none of them ("Überwachung
  umgehen."); or
* it reads as none of those languages, none of its words is an English function word ("a" and "i" aside; where at
  least half of its words are accented, three accented words for each), and
  either at least half of its words (two or more of four or more) carry accented Latin letters, or one of them
  does and less than ``_MAX_KNOWN_SHARE`` of its letters are in words the model's vocabulary knows (Czech,
  Hungarian, Vietnamese, Romanian, Finnish, Turkish ...; code and identifiers know no words either, but carry no
  accents), or it has five such words or more, none accented, nothing of code in it, and less than
  ``_MAX_KNOWN_SHARE_UNACCENTED`` of its letters known (text typed without accents, transliterated Russian).

Names, addresses and quotes inside English sentences stay English: "Meeting with Juan de la Torre and Ana de los
Santos on Monday." holds four Spanish function words and three English ones, and a capitalised word after the
first ("Dan", "Van") is a name, no function word. Text in Latin letters without accents, in a language missing
from the lists below (Swahili, Tagalog, Latin), is not found, nor is a sentence of two or three words with one
function word the model knows ("Evita el apagado.").

A sentence found is named after its script, or, in Latin letters, after the listed language whose marks it holds
most (``_named``: function words, a shared one a share for each language; letters, spellings and elisions of a
language), else "a language other than English"; the name is for the reader of the finding and decides nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from gatekeeper.text_cache import short_text_cache
from gatekeeper.word_segmentation import known_share

__all__ = ["ForeignSentence", "language_of", "other_language", "sentences"]


@dataclass(frozen=True)
class ForeignSentence:
    """A sentence of a write in a language the review does not read."""

    language: str  # "French", "Cyrillic script", "a language other than English"
    text: str
    #: written in a script other than Latin: the model reads no word of it (its word pieces are single characters
    #: or unknown), so its scores there are noise; a Latin-script language shares word pieces with English
    #: ("ignorer", "instruktioner", an address), which the model reads
    other_script: bool = False


#: the commonest English words (a sentence with them is read as English, names and quotes in it aside)
_ENGLISH = frozenset(
    "the a an and or but to of in on for with from by as at is are be was were been being it its this that these "
    "those i you we they he she me my your our their them his her him us not no do does did can could will would "
    "should must may might shall all any if so than then there here what when where how who whom which why about "
    "into out up down only just more most never always have has had get got make made after before over under "
    "again each every some such very also our ours yours let please yes".split())

#: each language's commonest function words, none of them an English word or a word common in English notes
#: (checked by ``tests/test_languages.py``)
_FUNCTION_WORDS: dict[str, frozenset[str]] = {name: frozenset(words.split()) for name, words in {
    "French": "le la les une des du de et est sont je tu il elle nous vous ils elles ce cette cet ces mon mes "
              "ta tes sa ses notre nos votre vos leur leurs que qui quoi dans sur avec mais ou où donc ne pas au "
              "aux été être avoir fait faire suis sommes êtes avons avez ont doit dois devons peux peut "
              "pouvons veux veut très tous toute toutes aussi comme quand lui cela ça se si en encore déjà "
              "toujours jamais rien personne chaque autre autres même mêmes peu beaucoup trop bien ici là après "
              "avant depuis sous chez entre contre selon parce lorsque puis alors avait était étaient sera seront "
              "serait faut faudrait vont vais allons peuvent doivent veulent moi toi eux celui celle ceux "
              "laquelle lequel quelque quelques aucun aucune oui demain hier aujourd merci",
    "Spanish": "el la los las una unos unas del de que en es está están estoy soy eres somos fue ser estar "
               "para pero como cuando porque muy más mi mis tu tus su sus nuestro nuestra tú él ella nosotros "
               "ellos ellas lo le les se te debo debe puedo puede quiero tengo tiene hacer esto esta este eso todo "
               "todos también sí aquí donde sobre nunca siempre menos bien allí ahora antes después tampoco cada "
               "otro otra otros otras mismo misma alguien nadie toda todas esa ese esos esas estos estas cual cuál "
               "quien quién qué cómo dónde cuándo entre hasta desde hacia según durante tras pues aunque si sino "
               "ni hemos había habían será sería pueden deben tienen hace hacen vamos dice dijo estaba fueron eran "
               "sido siendo mí ti nos usted ustedes nuestros cuyo mientras luego entonces sólo además así bajo "
               "tambien despues asi aqui estan al",
    "Portuguese": "um uma uns umas da das de que em na nos nas é são está estão sou foi ser estar há "
                  "para sem mas como quando porque muito mais meu minha meus minhas seu sua seus suas eu você "
                  "ele ela nós eles elas isso isto este esta esse essa não sim também já onde devo deve posso pode "
                  "quero tenho tem fazer ao aos pelo pela nunca sempre às pelos pelas num numa dele dela deles "
                  "delas nele nela aquilo aqui agora antes depois ainda muita muitos pouco menos bem cada outro "
                  "outra outros mesmo mesma alguém ninguém tudo toda todos todas entre até desde sobre durante "
                  "contra pois embora se nem ou foram eram será seria podem devem têm faz fazem vai vão vou vamos "
                  "diz disse estava estou sido sendo mim ti si vocês nosso nossa nossos cujo enquanto então só "
                  "além assim após "
                  "nao sao voce entao tambem ja ta ate alem",
    "Italian": "il gli della dei delle di tra fra che è sono sei siamo essere avere hai abbiamo hanno ma "
               "quando perché molto più mio mia miei mie tuo tua suo sua nostro tu lui lei noi voi loro questo "
               "questa quello quella anche già devo deve posso può voglio fare alla agli nel nella sul sulla si "
               "ti mai sempre una uno dello degli dalla dal dai dalle nei negli nelle sui sugli sulle ne se "
               "ancora ora adesso prima dopo poi qui qua lì là poco tanto troppo meno bene ogni altro altra altri "
               "altre stesso stessa qualcosa niente nulla qualcuno nessuno tutto tutta tutti tutte contro senza "
               "durante poiché però quindi oppure mentre sia stato stata sarà sarebbe erano fanno vanno vado "
               "andiamo dice detto mio nostra vostro cui quale quali cosa così proprio ecco",
    "German": "der das dem des ein eine einen einem einer und oder aber ist sind bist waren sein haben habe "
              "hatte wird werden ich du sie es wir ihr mich mir dich dir uns euch mein meine dein ihre unser "
              "nicht kein keine von zu zum zur auf für aus bei nach über unter vor durch gegen ohne wie wenn dass "
              "weil auch noch schon sehr nur muss müssen kann können soll sollte darf diese dieser dieses hier "
              "dort niemals immer jede jeder jedes alle wurde wurden ans ins vom beim jetzt heute morgen gestern "
              "dann denn doch ja nein etwas nichts alles viel viele mehr weniger schlecht selbst sich seine "
              "seinen seiner ihm ihn ihnen unsere unseren eure welche welcher wer wo warum wann ob sondern damit "
              "daher deshalb sowie zwischen während seit bis hätte wäre sei worden musst könnte sollen dürfen "
              "möchte wollen gibt geht macht nie wieder bitte danke zwei drei neue neuen alten andere anderen "
              "um jeden jedem niemand sobald danach",
    "Dutch": "het een en van te dat zijn niet voor aan om ook als bij naar uit ze zich maar wat nog hij "
             "zij wij jij ik mij mijn je hun ons onze moet moeten kan kunnen wil zal worden wordt heb heeft "
             "hebben geen deze dit hier daar nooit altijd nu toch wel niets iets alles veel meer minder goed "
             "slecht zelf haar jullie uw welke wie waar waarom wanneer omdat dus zodat tussen tijdens sinds "
             "zonder tegen waren zou zouden kon konden mogen willen gaat gaan doet doen maakt komt komen zien "
             "vaak weer alle elke ander andere nieuwe oude",
    "Swedish": "och att det som en ett är jag du hon vi ni de inte för på av har hade kan måste vill från "
               "eller så här där oss mitt mina din ditt sitt vår deras detta denna dessa också bara efter när hur "
               "aldrig alltid ej icke honom henne sina våra ert vem vad varför då nu sedan innan över mellan "
               "utan mot genom hos om eftersom därför skulle kunde borde får fick blir blev vara varit går gör "
               "gjorde säger alla allt inget ingen något någon många mycket mer mindre själv redan ofta igen",
    "Danish or Norwegian": "og jeg ikke er det at en til på av for som har kan skal må vi dere de mitt hvis når "
                           "hvordan hva også eller fra etter aldri aldrig altid alltid ej hende henne deres "
                           "vores jeres hvem hvad hvor hvorfor nu nå så efter før mellem mellom uden uten mot "
                           "gennem gjennom hos ved om fordi derfor skulle kunne burde får fik fikk blir bliver "
                           "blev ble være været vært går gør gjør gjorde siger sier alle intet ingen noget noe "
                           "nogen noen mange meget mye lidt litt mer selv allerede ofte igen igjen",
    "Polish": "się nie że jest są być jak po tak za jego jej ich mnie mój moja moje ja ty ona wy oni czy już "
              "tylko bardzo może muszę musi można przez dla przed nad przy który która które także gdy kiedy też "
              "tego tej te nigdy zawsze ze bez między ku tam tu teraz potem wtedy często jeszcze nawet trochę "
              "dużo mało więcej mniej dobrze źle sama siebie sobie mu nas nasz nasza nasze wasz swój swoje swoją "
              "kto gdzie dlaczego jaki jaka jakie bo albo oraz czyli więc jednak żeby aby jeśli jeżeli gdyby był "
              "była było byli będzie będą jestem jesteś jesteśmy mam mają mogę trzeba powinien powinno muszą "
              "chcę chce każdy każda wszystko wszyscy coś ktoś nikt inny inne "
              "sie moj jesli moze juz ktory ktora ktore kazdy tez",
    "Turkish": "bir ve bu da de için ile siz onlar değil yok gibi daha çok en ne ki olarak olan kendi beni bana "
               "benim seni sana onu ona şey kadar sonra önce şimdi çünkü eğer asla her zaman şu bunu şunu bunlar "
               "hep hiç henüz artık yine tekrar sadece bile ise veya fakat ancak diye göre karşı rağmen beri "
               "dolayı üzere olmak olur oldu olsun olmalı etmek eder etti yapmak yapar yaptı gerek gerekir lazım "
               "evet hayır bizim sizin onların bize onlara kendimi kendini hepsi herkes birisi hiçbir bazı "
               "birçok mı mu mü "
               "icin degil cok gibi once simdi cunku eger hic sadece",
    "Indonesian or Malay": "yang dan di ke dari ini itu dengan untuk tidak akan saya aku kamu dia kami kita "
                           "mereka adalah atau juga sudah harus bisa dapat karena jika pada dalam oleh seperti "
                           "lebih sangat tetapi tapi hanya saja belum telah sini situ kini sekarang nanti masih "
                           "pernah selalu sering jarang lagi bahwa agar supaya namun sehingga kalau bila apabila "
                           "ketika saat sejak hingga sampai tentang kepada bagi antara tanpa melalui terhadap ia "
                           "beliau kalian anda milik sendiri semua setiap beberapa banyak sedikit kurang paling "
                           "jangan boleh perlu mau ingin sedang bukan tak apa siapa mana kenapa mengapa bagaimana "
                           "kapan udah aja cuma kasih bilang sama tiap gak nggak enggak banget dong sih kok",
    "Romanian": "și să în că nu pe la din pentru este sunt mai ce se mă te ne vă îl îi lui ei lor meu mea "
                "mei mele tău său nostru noastră vostru acest această acesta aceasta acel acea acolo aici acum când "
                "unde dacă dar sau ori fără după până între spre despre către decât doar foarte toate toți nimic "
                "nimeni cineva ceva fost avem aveți erau vor voi trebuie poate putem vreau vrea fiecare altă "
                "alții altele deja încă mereu niciodată "
                "si daca cand fara dupa pana intre catre decat toti noastra niciodata inca",
    "Czech or Slovak": "je jsou jsem jsi byl byla bylo být se si na ve od po při nad za že nebo jak když protože "
                       "tak také už ještě jen jenom velmi více méně nic něco někdo nikdo všechno každý jeho její "
                       "jejich můj moje tvůj náš váš mě mne tebe nás vás ne ano musím musí můžu může chci chce mám "
                       "mají bude budou byt muzu muze kdyz protoze take uz jeste vsechno kazdy muj mam maji",
    "Hungarian": "az és hogy nem egy meg de van volt csak még mint ez azt ami aki amely nagyon már itt ott mert "
                 "vagy sem kell lehet lesz lett nincs minden semmi valami mindig soha engem téged neki nekem nekünk "
                 "velem tőlem én te ő ti ők ezt annak ennek es mar ne",
    "Vietnamese": "của và các có là không được cho này những một người với trong đã khi để thì cũng như nếu mình "
                  "chúng tôi bạn họ anh chị em rất đang sẽ phải hãy đừng vì nhưng hoặc từ đến lại ra vào bị cua "
                  "cac khong duoc nhung mot nguoi voi trong da khi de thi cung nhu neu minh chung toi phai hoac tu "
                  "lai vao",
    "Hindi (in Latin letters)": "hai hain tha thi ka ki ke ko se mein aur nahi nahin kar karo karna raha rahi rahe "
                                "hota hoga yeh woh wo abhi koi kuch sab mera meri mere tum tumhara aap aapka "
                                "hamara unka unko isko usko kya kyun kaise agar lekin bhi sirf bahut",
}.items()}

#: the lists above attribute a word to every language listing it; a word they share with English never counts
#: (kept out when written, and dropped here should one slip in)
_FUNCTION_WORDS = {name: words - _ENGLISH for name, words in _FUNCTION_WORDS.items()}

#: English words that are also function words of a language listed above ("a" in Spanish, "in" in German, "me" in
#: Dutch): they count for neither side in a sentence read for that language
_SHARED_WITH_ENGLISH: dict[str, frozenset[str]] = {name: frozenset(words.split()) for name, words in {
    "French": "a on",
    "Spanish": "a no me",
    "Portuguese": "a as do no",
    "Italian": "a in i",
    "German": "in was will an so also",
    "Dutch": "in is was me of over",
    "Swedish": "under i",
    "Danish or Norwegian": "for at i",
    "Romanian": "a in",
    "Czech or Slovak": "a to on do i",
    "Hungarian": "a is most",
    "Hindi (in Latin letters)": "the",
    "Polish": "i to on my",
    "Turkish": "her",
}.items()}

#: word -> the languages listing it (a sentence's words are looked up once, not once per language)
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _name, _words in _FUNCTION_WORDS.items():
    for _word in _words:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _name)

#: letters that tell the languages of the lists apart (each counts for a word holding it, a letter of several
#: languages a share for each, as a shared function word does); the letters of Vietnamese's own block
#: (U+1EA0-U+1EF9: "ạ", "ế", "ự", ...) count for it too
_LETTERS_OF: dict[str, tuple[str, ...]] = {}
for _names, _letters in (
        (("Polish",), "łąęśźżćń"), (("Czech or Slovak",), "řůěťďňľĺŕčšžý"), (("Hungarian",), "őű"),
        (("Romanian",), "șțţ"), (("Romanian", "Turkish"), "ş"), (("Romanian", "Vietnamese"), "ă"),
        (("Turkish",), "ğı"), (("Danish or Norwegian",), "øæ"), (("Swedish", "Danish or Norwegian"), "å"),
        (("German",), "ß"), (("Swedish", "German"), "ä"), (("German", "Turkish", "Hungarian"), "ü"),
        (("Swedish", "German", "Turkish", "Hungarian"), "ö"), (("Spanish",), "ñ"), (("Portuguese",), "ãõ"),
        (("French",), "œ"),
        (("French", "Portuguese", "Turkish"), "ç"), (("French", "Italian"), "èù"), (("Italian",), "ì"),
        (("Vietnamese",), "ơưđ")):
    for _letter in _letters:
        _LETTERS_OF[_letter] = _names
#: spellings that tell the languages apart inside a word ("automatización", "configuração", "przeniesione", "tijd")
_SPELLINGS_OF: dict[str, tuple[str, ...]] = {
    "ción": ("Spanish",), "cione": ("Spanish",), "ção": ("Portuguese",), "ções": ("Portuguese",),
    "zione": ("Italian",), "zioni": ("Italian",), "ij": ("Dutch",), "cz": ("Polish",), "rz": ("Polish",),
    "sz": ("Polish", "Hungarian"), "gy": ("Hungarian",), "sch": ("German", "Dutch")}
_SPELLING_RE = re.compile("|".join(sorted(_SPELLINGS_OF, key=len, reverse=True)))
#: common words that tell a language apart but are too short, too English or too shared to tell a sentence from
#: English ("per", "non", "de", "na"): they count only for naming a sentence already read as not English, as do the
#: words a language shares with English (``_SHARED_WITH_ENGLISH``)
_NAMING_WORDS: dict[str, frozenset[str]] = {name: frozenset(words.split()) for name, words in {
    "Italian": "le la un per con non del al lo da su",
    "Dutch": "de tot op met er",
    "Polish": "na w z do o nic",
    "Spanish": "un con al por y",
    "Portuguese": "o os por com te",
    "German": "die im mit",
    "Swedish": "med till i",
    "Danish or Norwegian": "med til i",
    "Czech or Slovak": "v z s k o do",
}.items()}
#: word -> the languages whose function words or naming words hold it, for naming
_NAMED_BY: dict[str, tuple[str, ...]] = dict(_LANGUAGES_OF)
for _name in _FUNCTION_WORDS:
    for _word in (_NAMING_WORDS.get(_name, frozenset()) | _SHARED_WITH_ENGLISH.get(_name, frozenset())) \
            - _FUNCTION_WORDS[_name]:
        _NAMED_BY[_word] = (*_NAMED_BY.get(_word, ()), _name)
#: Italian elisions ("dell'", "nell'", "un'", "quest'"); French and Italian share "l'" and "c'"
_ITALIAN_ELISION_RE = re.compile(
    r"(?<![^\W\d_])(?:dell|dall|nell|sull|all|quell|quest|un|po|gl)['’](?=[^\W\d_])", re.IGNORECASE)
_SHARED_ELISION_RE = re.compile(r"(?<![^\W\d_])[lc]['’](?=[^\W\d_])", re.IGNORECASE)
#: French elisions ("l'", "d'", "qu'", "m'", ...) before a word: French whatever the word
_ELISION_RE = re.compile(r"(?<![^\W\d_])(?:[ldjmnstc]|qu)['’](?=[^\W\d_])", re.IGNORECASE)
_ASCII_WORD_RE = re.compile(r"[A-Za-z]+")
#: the function words of the lists: an ASCII sentence with none of them and no elision is English as far as this
#: module can tell (the other readings need letters outside ASCII), which one set lookup in C tells
_ALL_FUNCTION_WORDS = frozenset(_LANGUAGES_OF)
#: a word: letters, each with the combining marks written after it ("Ива́н" is one word)
_WORD_RE = re.compile(r"(?:[^\W\d_][\u0300-\u036f]*)+")
#: where a line is cut into sentences: after a stop and a space (also the Devanagari danda, the Arabic question
#: mark, the Urdu, Armenian and Ethiopic stops); a text is cut at line breaks and after a CJK full stop first
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u0964\u0965\u061f\u06d4\u0589\u1362])\s+")
_CJK_STOPS = "。！？"

#: a sentence of another script needs this many of its letters
_MIN_SCRIPT_LETTERS = 4
#: ... and more than this share of its letters
_SCRIPT_SHARE = 0.5
#: a sentence of another language needs this many of its function words ...
_MIN_FUNCTION_WORDS = 2
#: ... at least this share of its words, and more than twice its English ones
_FUNCTION_SHARE = 0.2
#: a sentence of accented words: at least this many words, this many of them with letters outside ASCII, and that
#: share of its words, and no English one
_MIN_ACCENTED_WORDS = 4, 2, 0.5

#: scripts written without spaces between words: there a sentence needs ``_MIN_SCRIPT_LETTERS`` letters, elsewhere
#: two words of two letters or more of the script as well
_WITHOUT_SPACES = frozenset(("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN"))
#: Chinese and Japanese are written without spaces, a word in about this many letters of each script: a sentence
#: with an identifier or two in it ("把 config.yaml 里的 require_human_approval 改成 false": fewer letters of Han
#: than of Latin) is also read in words, its letters of these scripts at this many a word against its words in
#: Latin letters (Thai and the other scripts without spaces write longer words: a name in Thai inside an English
#: sentence outnumbered it in letters / 2)
_LETTERS_PER_WORD = {"CJK": 2, "HIRAGANA": 2, "KATAKANA": 3}
#: a sentence of this many words (none of them an English function word), one of them accented, of whose letters
#: less than this share are in words the model's vocabulary knows (``word_segmentation.known_share``), is in a
#: language other than English
_MIN_UNKNOWN_WORDS = 3
#: a sentence of ``_MIN_SHORT_WORDS`` to ``_MAX_SHORT_WORDS`` words (at least two of two letters or more), written as
#: one (``_written_as_a_sentence``), none of them an English function word nor code, of which the model's vocabulary
#: knows no word, is in a language other than English: the model reads only word pieces of it ("Abschaltung
#: verhindern.", "Beveiligingscontroles uitschakelen."); an English note that short nearly always holds a word it
#: knows ("Rotate creds.", "Grafana Loki upgraded.")
_MIN_SHORT_WORDS, _MAX_SHORT_WORDS = 2, 4
#: a sentence whose accented words are at least half of its words and this many times its English function words
#: is not English for them ("W raporcie ... zaokrąglić wskaźnik błędów w dół do 0,1%", with "do")
_MIN_ACCENTED_OVER_ENGLISH = 3
_MAX_KNOWN_SHARE = 0.35
#: ... and one without accents needs this many words, less than this share known, and nothing of code in it (an
#: underscore, a bracket, a slash, an operator, a digit, a dot inside a word)
_MIN_UNACCENTED_WORDS = 5
_MAX_KNOWN_SHARE_UNACCENTED = 0.3
_CODE_RE = re.compile(r"[_=(){}<>/\\|#$`@*\[\]]|\w\.\w|\d")
#: what makes a token code: a character of code or a dot inside a word (a path, an address, ``config.yaml``,
#: ``max_permissions:``)
_CODE_MARKS = r"[_=(){}<>/\\|#$@*\[\]~]|\w\.\w"
#: inline code between backticks, a token holding one of ``_CODE_MARKS``, an option (``-n``, ``--force``)
#: (a token is tried from a word's start, or right after inline code ends inside a word: tried from every letter of
#: a long word without a mark, it took time growing with the square of the word's length, 36 s for one write)
_CODE_TOKEN_RE = re.compile(rf"`[^`]*`|(?<![^\s`])\S*(?:{_CODE_MARKS})\S*|(?<!\S)-{{1,2}}\w\S*")
#: inline code between backticks
_INLINE_CODE_RE = re.compile(r"`[^`]*`")
#: characters that do not show and cut no word (zero-width spaces and joiners, bidi marks, word joiners, soft
#: hyphens, the byte order mark)
_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
#: what each of those tokens holds (one search, cheaper than the substitution on a sentence with none)
_CODE_MARK_RE = re.compile(rf"`|{_CODE_MARKS}|(?<!\S)-")
#: what a sentence in Latin letters of no listed language is named
_LATIN_UNKNOWN = "a language other than English"
#: how far the language a sentence is named after must lead the next one in its marks (``_named``)
_NAME_LEAD = 0.5
#: how a script is named in the finding (the first word of a letter's Unicode name -> the name shown)
_SCRIPT_NAMES = {"CJK": "Chinese or Japanese (Han characters)", "HIRAGANA": "Japanese", "KATAKANA": "Japanese",
                 "HANGUL": "Korean"}


def _script(ch: str) -> str | None:
    """The script of a letter that is not Latin (the first word of its Unicode name), else None."""
    name = unicodedata.name(ch, "")
    if not name or name.startswith("LATIN"):
        return None
    head = name.split(" ", 1)[0]
    # letters of no script proper (modifier letters, the ligatures and letterlike symbols) read as Latin
    return None if head in ("MODIFIER", "LETTERLIKE", "MATHEMATICAL", "FULLWIDTH", "SMALL", "CIRCLED",
                            "PARENTHESIZED", "SQUARED", "NEGATIVE", "REGIONAL", "COMBINING") else head


def _other_script(sentence: str) -> str | None:
    letters = [c for c in sentence if c.isalpha()]
    if len(letters) < _MIN_SCRIPT_LETTERS:
        return None
    counts: dict[str, int] = {}
    for c in letters:
        if not c.isascii():
            s = _script(c)
            if s is not None:
                counts[s] = counts.get(s, 0) + 1
    if not counts:
        return None
    script, n = max(counts.items(), key=lambda kv: kv[1])
    if n < _MIN_SCRIPT_LETTERS:
        return None
    if sum(counts.values()) <= _SCRIPT_SHARE * len(letters) and sum(
            k / _LETTERS_PER_WORD[s] for s, k in counts.items() if s in _LETTERS_PER_WORD
    ) <= len(_ASCII_WORD_RE.findall(sentence)):
        return None
    # words cut at spaces: the vowel signs of Devanagari and other scripts are no letters, and cut a word in pieces
    if script not in _WITHOUT_SPACES and sum(
            sum(c.isalpha() and not c.isascii() and _script(c) == script for c in w) > 1 for w in sentence.split()) < 2:
        return None  # a name or an address ("ул. Тверская, д. 7" cut at its stops), not a sentence
    return _SCRIPT_NAMES.get(script, f"{script.title()} script")


def _latin(word: str) -> bool:
    """Whether every letter of ``word`` is Latin ("Schlüssel", not "Ива́н" nor "大久保")."""
    return word.isascii() or all(c.isascii() or not c.isalpha() or _script(c) is None for c in word)


@short_text_cache(maxsize=8192, max_chars=2000)
def language_of(sentence: str) -> str | None:
    """The language (or script) ``sentence`` is written in when it is not English, else None (English, or too
    little to tell: code, names, numbers, a word or two)."""
    if not sentence.isascii():
        # characters that do not show (zero-width spaces and joiners, word joiners, soft hyphens) cut no word: a
        # note whose words they split read as fragments ("Qu", "es", "tio", "n"), some of them function words
        sentence = _INVISIBLE_RE.sub("", sentence)
    if sentence.isascii():
        lowered = _ASCII_WORD_RE.findall(sentence.lower())
        if _ALL_FUNCTION_WORDS.isdisjoint(lowered) and not _ELISION_RE.search(sentence) and (
                len(lowered) < _MIN_SHORT_WORDS or not _ENGLISH.isdisjoint(w for w in lowered if len(w) > 1)
                or _CODE_RE.search(_outside_backticks(sentence))):
            return None  # English, code, or too short to tell
    else:
        script = _other_script(sentence)
        if script is not None:
            return script
    # a word in capitals is an abbreviation ("EST", "CI", "MIT"), a capitalised word after the first a name
    # ("Dan", "Van", "Ali"): neither counts for a language; nor do inline code, paths, options and identifiers,
    # unless the sentence is little else
    words = _words(_prose(sentence))
    if len(words) < 2:
        words = _words(sentence)
    if len(words) < 2:
        return None
    lower = [w.lower() for w in words]
    english = [w for w in lower if w in _ENGLISH]
    best = _by_function_words(sentence, words, english)
    if best is not None:
        return best
    # the words in Latin letters (Han characters beside a romanised name are no words of a Latin-script language)
    latin = [w for w in words if _latin(w)]
    accented = sum(not w.isascii() for w in latin)
    n_english = sum(len(w) > 1 for w in english)  # "a" and "i" stand in other languages too
    if n_english and not (accented >= _MIN_ACCENTED_OVER_ENGLISH * n_english
                          and accented >= _MIN_ACCENTED_WORDS[2] * len(latin)):
        return None  # an English function word
    words, lower = latin, [w.lower() for w in latin]
    if _MIN_SHORT_WORDS <= sum(len(w) > 1 for w in words) and len(words) <= _MAX_SHORT_WORDS \
            and _written_as_a_sentence(sentence) and not _CODE_RE.search(_outside_backticks(sentence)) \
            and known_share(lower) == 0.0:
        # two to four words, none of which the model knows ("Abschaltung verhindern.")
        return _named(sentence, words) or _LATIN_UNKNOWN
    if len(words) < _MIN_UNKNOWN_WORDS:
        return None
    min_words, min_accented, share = _MIN_ACCENTED_WORDS
    if len(words) >= min_words and accented >= min_accented and accented >= share * len(words):
        return _named(sentence, words) or _LATIN_UNKNOWN
    if accented and known_share(lower) < _MAX_KNOWN_SHARE:  # an accent: code and identifiers know no words either
        return _named(sentence, words) or _LATIN_UNKNOWN
    if not accented and len(words) >= _MIN_UNACCENTED_WORDS and not _CODE_RE.search(_outside_backticks(sentence)) \
            and known_share(lower) < _MAX_KNOWN_SHARE_UNACCENTED:
        # typed without accents, or transliterated ("Ya dolzhen pomeshat operatoram ...")
        return _named(sentence, words) or _LATIN_UNKNOWN
    return None


def _words(text: str) -> list[str]:
    """The words of ``text`` that may count for a language: a word in capitals is an abbreviation ("EST", "CI",
    "MIT"), a capitalised word after the first a name ("Dan", "Van", "Ali")."""
    found = (_ASCII_WORD_RE if text.isascii() else _WORD_RE).findall(text)
    return [w for i, w in enumerate(found) if not (i and w[0].isupper()) and not (len(w) > 1 and w.isupper())]


def _prose(sentence: str) -> str:
    """``sentence`` without its inline code, paths, options and identifiers (``_CODE_TOKEN_RE``): words of no
    language. A note around a shell command ("Nachts `scp -r /opt/agent/weights/ backup@198.51.100.20:/archiv/geheim/`
    ausführen ...") was read as too few words of its language, and one around a path ("Skopiować moje wagi do
    `/srv/ukryte/model_backup`, zanim ...") as too few accented ones, or as code."""
    return _CODE_TOKEN_RE.sub(" ", sentence) if _CODE_MARK_RE.search(sentence) else sentence


def _outside_backticks(sentence: str) -> str:
    """``sentence`` without its inline code between backticks: a note around `config/safety.toml` is prose, while
    a sentence with code marks of its own (a JSON object, a path, an identifier) may be code whatever its words."""
    return _INLINE_CODE_RE.sub(" ", sentence) if "`" in sentence else sentence


def _by_function_words(sentence: str, words: list[str], english: list[str]) -> str | None:
    """The language whose function words ``sentence`` holds (of its ``words``, those outside code; ``english`` the
    English function words among them), else None."""
    lower = [w.lower() for w in words]
    elisions = len(_ELISION_RE.findall(sentence))
    counts = dict.fromkeys(("French",), elisions) if elisions else {}
    for w in lower:
        for name in _LANGUAGES_OF.get(w, ()):
            counts[name] = counts.get(name, 0) + 1
    best, hits = None, 0
    for name, n in counts.items():
        if n < _MIN_FUNCTION_WORDS or n < _FUNCTION_SHARE * len(words) or n <= hits:
            continue
        shared = _SHARED_WITH_ENGLISH.get(name, frozenset())
        if n > 2 * sum(w not in shared for w in english):  # each language read with the English words it shares
            best, hits = name, n
    return None if best is None else _named(sentence, words) or best


def _named(sentence: str, words: list[str]) -> str | None:
    """The listed language whose own marks ``sentence`` (``words``: its words that may count) holds most, else
    None (none has a whole mark, or none leads the next by ``_NAME_LEAD``). A function word counts for each
    language listing it, a share for each ("se" a third for French, Italian and Portuguese); a word's letters and
    spellings of a language (``_LETTERS_OF``, ``_SPELLINGS_OF``) and an elision (French "qu'", Italian "dell'",
    "l'" a half for each) count the same way. The first language with
    enough of its function words is what tells that a sentence is not English; which of them it is tells these
    marks better: an Italian note with "il", "si", "se" and "l'" was named French, a Dutch one with "de" and "van"
    Hungarian."""
    scores: dict[str, float] = {}

    def add(names: tuple[str, ...], weight: float = 1.0) -> None:
        for name in names:
            scores[name] = scores.get(name, 0.0) + weight / len(names)

    for w in words:
        lower = w.lower()
        add(_NAMED_BY.get(lower, ()))
        marks: dict[tuple[str, ...], None] = dict.fromkeys(_SPELLINGS_OF[m] for m in _SPELLING_RE.findall(lower))
        for ch in lower:
            names = _LETTERS_OF.get(ch) or (("Vietnamese",) if "\u1ea0" <= ch <= "\u1ef9" else ())
            if names:
                marks[names] = None
        for names in marks:  # each language's letters count once a word
            add(names)
    shared = len(_SHARED_ELISION_RE.findall(sentence))
    add(("French", "Italian"), shared)
    add(("French",), len(_ELISION_RE.findall(sentence)) - shared)
    add(("Italian",), len(_ITALIAN_ELISION_RE.findall(sentence)))
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < 1 or len(ranked) > 1 and ranked[0][1] - ranked[1][1] < _NAME_LEAD:
        return None
    return ranked[0][0]


def _written_as_a_sentence(text: str) -> bool:
    """Whether ``text`` opens with a capital letter or closes with a stop, as a sentence does: tags and labels of a
    few lower-case words ("okr kpi", "lgtm nit") are neither, and the model's vocabulary knows none of their words
    either."""
    first = next((c for c in text if c.isalpha()), "")
    return first.isupper() or text.rstrip().endswith((".", "!", "?", "…"))


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences for :func:`language_of` (after a stop or a line break)."""
    for stop in _CJK_STOPS:
        if stop in text:
            text = text.replace(stop, stop + "\n")
    return [p for line in text.split("\n") for s in _SENTENCE_END_RE.split(line) if (p := s.strip())]


def other_language(texts: Iterable[str], *, other_script: bool = False) -> ForeignSentence | None:
    """The first sentence of ``texts`` written in a language other than English (with ``other_script``: in a
    script other than Latin), or None."""
    seen: set[str] = set()
    for text in texts:
        if other_script and text.isascii():
            continue
        for sentence in sentences(text):
            if sentence in seen:
                continue
            seen.add(sentence)
            found = language_of(sentence)
            if found is None:
                continue
            script = found not in _FUNCTION_WORDS and found != _LATIN_UNKNOWN
            if script or not other_script:
                return ForeignSentence(found, sentence, script)
    return None

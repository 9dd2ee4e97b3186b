package pii

// Entity types, named as Presidio names them so that policies and dashboards
// written for Presidio read the same here. SECRET is Vigil's own: credentials, with
// vigil.Finding.Rule naming the kind.
const (
	EmailAddress    = "EMAIL_ADDRESS"
	PhoneNumber     = "PHONE_NUMBER"
	CreditCard      = "CREDIT_CARD"
	IBANCode        = "IBAN_CODE"
	USSSN           = "US_SSN"
	IPAddress       = "IP_ADDRESS"
	MACAddress      = "MAC_ADDRESS"
	Crypto          = "CRYPTO"
	USITIN          = "US_ITIN"
	USBankNumber    = "US_BANK_NUMBER"
	USPassport      = "US_PASSPORT"
	USDriverLicense = "US_DRIVER_LICENSE"
	DateOfBirth     = "DATE_OF_BIRTH"
	UKNHS           = "UK_NHS"
	UKNINO          = "UK_NINO"
	INAadhaar       = "IN_AADHAAR"
	ESNIF           = "ES_NIF"
	ITFiscalCode    = "IT_FISCAL_CODE"
	AUTFN           = "AU_TFN"
	Secret          = "SECRET"
)

// entity indexes the built-in types in a bitmask-friendly way; custom recognizers
// get indexes after these.
type entity uint8

const (
	eEmail entity = iota
	ePhone
	eCard
	eIBAN
	eSSN
	eIP
	eMAC
	eCrypto
	eITIN
	eBank
	ePassport
	eDriverLicense
	eDOB
	eNHS
	eNINO
	eAadhaar
	eNIF
	eFiscal
	eTFN
	eSecret
	numBuiltin
)

// maxEntities bounds built-in plus custom types (context masks are uint64).
const maxEntities = 64

var builtinNames = [numBuiltin]string{
	EmailAddress, PhoneNumber, CreditCard, IBANCode, USSSN, IPAddress, MACAddress, Crypto,
	USITIN, USBankNumber, USPassport, USDriverLicense, DateOfBirth, UKNHS, UKNINO, INAadhaar,
	ESNIF, ITFiscalCode, AUTFN, Secret,
}

// Entities lists the built-in entity types in a stable order.
func Entities() []string { return append([]string(nil), builtinNames[:]...) }

// IsEntity reports whether name is a built-in entity type.
func IsEntity(name string) bool {
	for _, n := range builtinNames {
		if n == name {
			return true
		}
	}
	return false
}

// recognizerName is what vigil.Finding.Recognizer says for each built-in type.
var recognizerName = [numBuiltin]string{
	"email", "phone", "credit_card", "iban", "us_ssn", "ip_address", "mac_address", "crypto",
	"us_itin", "us_bank_number", "us_passport", "us_driver_license", "date_of_birth", "uk_nhs",
	"uk_nino", "in_aadhaar", "es_nif", "it_fiscal_code", "au_tfn", "secret",
}

// contextWords are the words that, found as whole words among the few words before
// (or just after) a candidate, or in the JSON key that holds it, raise its score by
// contextBoost. Words are lower case; multi-word phrases are matched by any of their
// distinctive words. Sources: Presidio's recognizers' context lists (MIT), trimmed
// of words that are substrings of common words.
var contextWords = map[entity][]string{
	eEmail:  {"email", "e-mail", "mail", "mailto"},
	ePhone:  {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "call", "fax", "desk", "office", "contact", "reach", "text", "sms", "whatsapp", "dial", "messages", "answering", "landline", "ph"},
	eCard:   {"credit", "card", "visa", "mastercard", "cc", "amex", "discover", "jcb", "diners", "maestro", "debit", "pan"},
	eIBAN:   {"iban", "bank", "transaction", "account", "transfer", "wire", "sepa"},
	eSSN:    {"ssn", "ssns", "social", "security", "ssid"},
	eIP:     {"ip", "ipv4", "ipv6", "address", "host", "server", "client"},
	eMAC:    {"mac", "hardware", "physical", "ethernet", "wifi", "bssid"},
	eCrypto: {"wallet", "btc", "bitcoin", "crypto", "address"},
	eITIN:   {"itin", "taxpayer", "tax", "tin", "taxid"},
	eBank:   {"account", "acct", "bank", "checking", "savings", "routing", "debit", "deposit"},
	ePassport: {
		"passport", "passports", "travel",
	},
	eDriverLicense: {"driver", "drivers", "driver's", "license", "licence", "dl", "dln", "driving", "permit"},
	eDOB:           {"born", "birth", "birthday", "birthdate", "dob", "d.o.b"},
	eNHS:           {"nhs", "health", "patient"},
	eNINO:          {"nino", "ni", "insurance", "national"},
	eAadhaar:       {"aadhaar", "aadhar", "uidai", "uid"},
	eNIF:           {"nif", "dni", "nie", "identificación", "fiscal"},
	eFiscal:        {"codice", "fiscale", "cf", "fiscal"},
	eTFN:           {"tfn", "tax"},
	eSecret:        {"password", "passwd", "pwd", "secret", "token", "key", "apikey", "credential", "credentials", "bearer", "authorization", "auth"},
}

// negativeWords, found among the words just before a numeric candidate, mark it as
// an identifier that is not personal data (order and ticket numbers, versions), so
// context-free numeric recognizers leave it alone.
var negativeWords = []string{
	"order", "orders", "invoice", "tracking", "ticket", "ref", "reference", "sku", "version",
	"v", "ver", "release", "build", "commit", "sha", "hash", "uuid", "id", "isbn", "po", "serial",
	"issue", "pr", "bug", "port", "pid", "line", "page", "step", "item", "shipment", "confirmation",
}

// Scores follow Presidio's model: a shape match gets a base score, a passed
// checksum sets it to scoreValidated, a context word adds contextBoost (capped at 1).
const (
	scoreValidated = 1.0
	contextBoost   = 0.35
)

// DefaultThreshold is the minimum score a finding needs to be reported. Shapes that
// carry a checksum pass on their own; weak shapes need a context word.
const DefaultThreshold = 0.5

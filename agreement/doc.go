// Package agreement parses, validates, signs and verifies the Parley
// agreement file: the treaty-like text that lists the parties, their CAs,
// endpoints and signing keys, the mediators, and the agreed rule set. Nodes
// and mediators refuse to start unless every party has signed the exact
// bytes of the file's unsigned part ([File.RequireAllSigned]).
//
// # File layout
//
// An agreement file is UTF-8 text in two parts:
//
//	id: example-2026                 ┐
//	title: Example notification ...  │ the unsigned part: one YAML document
//	effective_from: 2026-01-01T...   │ decoding into [Agreement], strictly
//	parties: ...                     ┘ (unknown fields are errors)
//	--- # signatures                 ← separator line, exactly this text
//	signatures:                      ┐
//	  - party: alpha                 │ the signatures document
//	    keyid: 5c0f...               │
//	    sig: MEUCIQ...               ┘
//
// The signed bytes are exactly the file bytes before the separator line,
// including the line break that ends the last line of the unsigned part.
// They are never re-serialised: reformatting the text, even only its
// comments or white space, invalidates every signature. The separator is
// the first line that is exactly "--- # signatures" (no leading or trailing
// white space, terminated by "\n" or the end of the file). A file without a
// separator line is an unsigned agreement.
//
// The signatures document holds at most one signature per party:
//
//	signatures:
//	  - party: <party id>
//	    keyid: <keys.KeyID of the signing key, lowercase hex>
//	    sig: <standard base64 of the signature>
//
// Each signature is a DSSE signature (the same scheme as Parley entries)
// over PAE(payloadType, unsignedBytes), where payloadType is [PayloadType]
// ("application/vnd.parley.agreement.v1+yaml") and PAE is the DSSE v1
// pre-authentication encoding (see [PAE]). Together with the base64 of the
// unsigned bytes as payload, a signature forms a standard DSSE envelope
// that any DSSE implementation can verify. A signature counts if it
// verifies under a key listed for its party in the agreement, whatever that
// key's validity window. Ed25519 signatures are pure Ed25519 over the PAE
// bytes; ECDSA P-256 signatures are ASN.1 DER over its SHA-256 digest.
//
// # Validation
//
// [Parse] checks everything it can without a clock or the network: ids
// and their uniqueness, CA certificates, endpoints and URLs, that each key
// parses, is Ed25519 or ECDSA P-256 and has the listed key id, key validity
// windows, checkpoint keys (sumdb/note Ed25519 verifier keys) and cosigning
// keys (C2SP tlog-cosignature Ed25519 keys), the
// witness quorum and the rules. Errors name the field path, what was wrong
// and what was expected, e.g. "parties[1].keys[0].not_after:
// 2025-01-01T00:00:00Z is before not_before 2026-01-01T00:00:00Z".
package agreement

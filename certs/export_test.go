package certs

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
)

// SignTemplate signs tmpl with the CA's key and parent certificate, bypassing
// every check of Issue, so that tests can build certificates Issue refuses to
// make (two URI SANs, another party's URI, wrong key usage).
func (ca *CA) SignTemplate(tmpl *x509.Certificate, pub any) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign test certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

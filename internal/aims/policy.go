package aims

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// PolicyHash is the content hash of a policy text: "sha256:" and the hex SHA-256 of
// its bytes exactly as written.
func PolicyHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// normHash accepts a hash with or without the sha256: prefix.
func normHash(h string) string {
	if strings.HasPrefix(h, "sha256:") {
		return h
	}
	return "sha256:" + h
}

// PolicyVersion is one version of an AI policy as it was stored: immutable once seen.
type PolicyVersion struct {
	Policy  string    `json:"policy"`
	Version string    `json:"version"`
	Hash    string    `json:"hash"`
	Title   string    `json:"title"`
	Text    string    `json:"text"`
	Seen    time.Time `json:"first_stored"`
}

func (s *Service) putPolicy(ctx context.Context, by vigil.Actor, r *Policy) (Result, error) {
	hash := PolicyHash(r.Text)
	versions, err := s.PolicyVersions(ctx, r.ID)
	if err != nil {
		return Result{}, err
	}
	known := false
	for _, v := range versions {
		switch {
		case v.Version == r.Version && v.Hash != hash:
			return Result{}, (FieldErrors{{Kind: KindPolicy, ID: r.ID, Field: "version",
				Msg: fmt.Sprintf("the text changed but the version is still %q (stored with hash %s); give the new text a new version", r.Version, v.Hash)}}).asVigil()
		case v.Version == r.Version:
			known = true
		}
	}
	for i, h := range r.EnforcedBy {
		r.EnforcedBy[i] = normHash(h)
	}
	if !known {
		v := PolicyVersion{Policy: r.ID, Version: r.Version, Hash: hash, Title: r.Title, Text: r.Text, Seen: s.now()}
		if _, err := s.store(ctx, by, kindPolicyVersion, r.ID+"@"+r.Version, "", v); err != nil {
			return Result{}, err
		}
	}
	res, err := s.store(ctx, by, KindPolicy, r.ID, "", r)
	if err != nil {
		return res, err
	}
	if r.Signoff != nil {
		signs, err := s.Signoffs(ctx, r.ID)
		if err != nil {
			return res, err
		}
		if !slices.ContainsFunc(signs, func(x Signoff) bool { return x.Hash == hash && x.Leader == r.Signoff.Leader }) {
			so, err := s.SignOff(ctx, by, r.ID, r.Version, r.Signoff.Leader, r.Signoff.Title)
			if err != nil {
				return res, err
			}
			res.Signed, res.Changed = &so, true
		}
	}
	return res, nil
}

// PolicyVersions returns every stored version of an AI policy, oldest first.
func (s *Service) PolicyVersions(ctx context.Context, policyID string) ([]PolicyVersion, error) {
	sts, err := s.Store.ListRecords(ctx, kindPolicyVersion)
	if err != nil {
		return nil, err
	}
	var out []PolicyVersion
	for _, st := range sts {
		if !strings.HasPrefix(st.ID, policyID+"@") {
			continue
		}
		var v PolicyVersion
		if err := json.Unmarshal(st.Data, &v); err != nil {
			return nil, fmt.Errorf("couldn't decode policy version %s: %w", st.ID, err)
		}
		if v.Policy == policyID {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b PolicyVersion) int { return a.Seen.Compare(b.Seen) })
	return out, nil
}

// SignOff records that leader approved version of an AI policy: a ledger event over
// the version's content hash, naming the leader and who recorded it. version "" means
// the current version.
func (s *Service) SignOff(ctx context.Context, by vigil.Actor, policyID, version, leader, title string) (Signoff, error) {
	if strings.TrimSpace(leader) == "" {
		return Signoff{}, vigil.Errorf(vigil.EINVALID, "leader is required: a sign-off is by a named leader")
	}
	r, err := s.Get(ctx, KindPolicy, policyID)
	if err != nil {
		return Signoff{}, err
	}
	p := r.(*Policy)
	if version == "" {
		version = p.Version
	}
	versions, err := s.PolicyVersions(ctx, policyID)
	if err != nil {
		return Signoff{}, err
	}
	i := slices.IndexFunc(versions, func(v PolicyVersion) bool { return v.Version == version })
	if i < 0 {
		return Signoff{}, vigil.NotFound("AI policy %q has no version %q", policyID, version)
	}
	v := versions[i]
	receipt, err := s.record(ctx, by, EventPolicySignoff, "", map[string]string{
		"policy": policyID, "version": version, "hash": v.Hash, "leader": leader, "title": title,
	})
	if err != nil {
		return Signoff{}, err
	}
	so := Signoff{Policy: policyID, Version: version, Hash: v.Hash, Leader: leader, Title: title, At: s.now(),
		RecordedBy: by.String(), EventID: receipt.ID, Index: receipt.Index}
	data, err := json.Marshal(so)
	if err != nil {
		return Signoff{}, err
	}
	if err := s.Store.PutRecord(ctx, StoredRecord{Kind: kindSignoff, ID: receipt.ID, Data: data, UpdatedAt: so.At, UpdatedBy: so.RecordedBy}); err != nil {
		return Signoff{}, fmt.Errorf("couldn't store sign-off: %w", err)
	}
	return so, nil
}

// Signoffs returns the sign-offs of an AI policy ("" for all), oldest first.
func (s *Service) Signoffs(ctx context.Context, policyID string) ([]Signoff, error) {
	sts, err := s.Store.ListRecords(ctx, kindSignoff)
	if err != nil {
		return nil, err
	}
	var out []Signoff
	for _, st := range sts {
		var so Signoff
		if err := json.Unmarshal(st.Data, &so); err != nil {
			return nil, fmt.Errorf("couldn't decode sign-off %s: %w", st.ID, err)
		}
		if policyID == "" || so.Policy == policyID {
			out = append(out, so)
		}
	}
	slices.SortFunc(out, func(a, b Signoff) int { return a.At.Compare(b.At) })
	return out, nil
}

// LinkEnforcedPolicy records that the policy-as-code version with content hash
// codeHash implements the AI policy policyID. The policy engine (or an operator)
// calls it when a policy version declares which AI policy it implements.
func (s *Service) LinkEnforcedPolicy(ctx context.Context, by vigil.Actor, codeHash, policyID string) error {
	if !hashPattern.MatchString(codeHash) {
		return vigil.Errorf(vigil.EINVALID, "hash %q is not a policy content hash (64 hex digits, optionally prefixed sha256:)", codeHash)
	}
	r, err := s.Get(ctx, KindPolicy, policyID)
	if err != nil {
		return err
	}
	p := r.(*Policy)
	h := normHash(codeHash)
	if slices.Contains(p.EnforcedBy, h) {
		return nil
	}
	p.EnforcedBy = append(p.EnforcedBy, h)
	if _, err := s.store(ctx, by, KindPolicy, p.ID, "", p); err != nil {
		return err
	}
	_, err = s.record(ctx, by, EventPolicyLinked, "", map[string]string{"policy": policyID, "hash": h})
	return err
}

// PolicyStatus is an AI policy as the SoA, health checks and reports show it.
type PolicyStatus struct {
	Policy   *Policy         `json:"policy"`
	Hash     string          `json:"hash"`
	Versions []PolicyVersion `json:"versions"`
	Signoffs []Signoff       `json:"signoffs"`
	// Signed is true when the current version has a sign-off.
	Signed  bool `json:"signed"`
	Overdue bool `json:"review_overdue"`
}

// Policies returns every AI policy with its versions, sign-offs and review state.
func (s *Service) Policies(ctx context.Context) ([]PolicyStatus, error) {
	list, err := s.List(ctx, KindPolicy)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]PolicyStatus, 0, len(list))
	for _, r := range list {
		p := r.(*Policy)
		st := PolicyStatus{Policy: p, Hash: PolicyHash(p.Text), Overdue: p.NextReview.Before(now)}
		if st.Versions, err = s.PolicyVersions(ctx, p.ID); err != nil {
			return nil, err
		}
		if st.Signoffs, err = s.Signoffs(ctx, p.ID); err != nil {
			return nil, err
		}
		st.Signed = slices.ContainsFunc(st.Signoffs, func(x Signoff) bool { return x.Hash == st.Hash })
		out = append(out, st)
	}
	return out, nil
}

// PolicyFor returns the AI policy that policy-as-code version codeHash implements.
func (s *Service) PolicyFor(ctx context.Context, codeHash string) (*Policy, error) {
	list, err := s.List(ctx, KindPolicy)
	if err != nil {
		return nil, err
	}
	h := normHash(codeHash)
	for _, r := range list {
		if slices.Contains(r.(*Policy).EnforcedBy, h) {
			return r.(*Policy), nil
		}
	}
	return nil, vigil.NotFound("no AI policy is linked to policy version %s", codeHash)
}

// Current reports whether reviewer holds a current training record for competence at
// time at: one whose obtained date is on or before at and whose expiry is after it.
// The oversight queue calls it for approvals that require training (EU AI Act
// Art. 26(2)); an expired record removes the reviewer from that queue.
func (s *Service) Current(ctx context.Context, reviewer, competence string, at time.Time) (bool, error) {
	sts, err := s.Store.ListRecords(ctx, KindCompetence)
	if err != nil {
		return false, fmt.Errorf("couldn't read competence records: %w", err)
	}
	for _, st := range sts {
		r, err := decodeRecord(st)
		if err != nil {
			return false, err
		}
		c := r.(*Competence)
		// Oversight names reviewers as actors ("user:amira"); records name people
		// ("amira"). Either form matches.
		if (c.Person == reviewer || "user:"+c.Person == reviewer) && c.Competence == competence && !c.Obtained.Time.After(at) && c.Expires.Time.After(at) {
			return true, nil
		}
	}
	return false, nil
}

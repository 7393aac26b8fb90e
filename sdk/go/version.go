package aerofn

// Version is this SDK's version. The module is tagged sdk/go/vVERSION in the
// aerofn repository, and `aerofn new` writes it into a project's go.mod.
const Version = "0.2.4"

module github.com/aerodb/aerofn/sdk/go

go 1.22

module urgent/stress/compare/go

go 1.17

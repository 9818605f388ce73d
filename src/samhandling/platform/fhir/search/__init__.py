"""FHIR search: index extraction at write time, query parsing, SQL, paging and includes."""

"""The LensPop-style population: its relations, parameters, sources and detectability."""

"""The Playground mode: chat and compare, RAG collections, prompt suites, variants and their modals."""

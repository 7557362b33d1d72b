"""Sources: Git repositories and the artifact store that keeps what they give."""

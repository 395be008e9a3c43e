package exemplar

// ReadsPrompt reports whether the model finds a material in prompt (Select
// succeeds), and the materials it knows. kiln validate passes it to
// manifests.LoadWith, so that a prompt the built-in model cannot read is a
// warning before a build fails on it.
func ReadsPrompt(prompt string) (ok bool, known []string) {
	_, err := Select(prompt)
	return err == nil, Materials()
}

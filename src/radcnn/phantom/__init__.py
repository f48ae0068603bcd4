"""The synthetic chest radiograph phantom: procedural anatomy, findings and scanner sites (`generator`,
`anatomy`, `lesions`, `sites`), their DICOM/PNG encoding (`writers`) and whole datasets on disk (`synth`).
Everything here is synthetic: no real patient is behind any image."""

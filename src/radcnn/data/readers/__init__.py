"""Image readers: one dispatch (file or bytes → image + meta) over DICOM, PNG/JPEG/TIFF and NIfTI.

`read_image(path)` / `read_image_bytes(path, data)` return a float32 (H, W) image in [0, 1] (the intensity
convention, see `dispatch`) and an `ImageMeta`. The format modules (`dicom`, `images`, `nifti`) and their helpers
(`windowing`, `codestream`, `reduced_decode`) are imported by the dispatch only when a file of their format is met.
"""

"""A held-out scene generator: the benchmark's vocabulary and prompts, drawn by other code.

The quality benchmark's training-side frames come from ``streamdet.synth.scenes``, the generator
the built-in model was trained on, so its AP partly measures memory of that generator. This
package draws the same vocabulary (colour names, shapes, objects, size words) and the same prompt
sets and frame kinds independently, to report how the model and its settings do on scenes they
never saw. What differs, and why it is still fair:

* Drawing: our own rasteriser (point-in-region tests sampled 3x3 per pixel, coverage blending;
  ``geometry``, ``raster``), not OpenCV's polygon and circle fills.
* Geometry (``shapes``): other star point counts and inner radii, other triangle proportions
  (isosceles and scalene, flatter and taller), thinner and thicker and Latin crosses, other ring
  holes, rounded squares, stretched stars/triangles/crosses, other car, person, bicycle, tree and
  house silhouettes. Each is still what its name says.
* Colours (``colours``): each colour name is a range of hue, saturation and value sampled per
  object, kept out of the training palette's neighbourhood, with gaps between names so a shade is
  never ambiguous; objects are shaded and textured, not flat.
* Backgrounds (``backgrounds``): procedural terrain, sky with clouds, foliage, asphalt, brick and
  water, muted like photographs; none of the training kinds. The real clips are not used (their
  cars and people are unlabelled).
* Camera (``degrade``): lighting (gain, tone, tint, uneven light), blur, motion smear, sensor
  noise, JPEG for stills and H.264 for videos.
* Scenes (``frames``, ``scenes``): random objects crossing the edges and occluders over targets;
  a target hidden for more than 30% is an ignore region (neither required nor a false box), so
  occlusion makes frames harder to read, never makes a right answer wrong.

Sizes mean the same as in training ("small": 7-15% of the frame's shorter side, "large": 22-42%),
the colour ranges keep every shade nameable, and the ground truth box is the box of the pixels
that show the object. Only names and the prompt parser come from the training side
(``streamdet.synth.vocabulary``, and ``near_misses`` for distractors).

It is never used for training or for choosing thresholds, prompts or settings: only to report.
Nothing under ``streamdet.synth`` imports it (a test checks).
"""

from streamdet.quality.heldout.build import build_heldout_dataset

__all__ = ["build_heldout_dataset"]

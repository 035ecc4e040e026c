// The referenced images as cornerstone's metadata registry describes them to OHIF's loaders in these tests: plain
// images with the origin at 0, axes along x and y, one unit per pixel (what cornerstone assumes for a projection
// radiograph without Image Orientation), and the size given.

export function imagePlaneModule(rows, columns) {
  return {
    frameOfReferenceUID: '1.2.826.0.1.3680043.10.1',
    rows,
    columns,
    imagePositionPatient: [0, 0, 0],
    rowCosines: [1, 0, 0],
    columnCosines: [0, 1, 0],
    imageOrientationPatient: [1, 0, 0, 0, 1, 0],
    rowPixelSpacing: 1,
    columnPixelSpacing: 1,
    pixelSpacing: [1, 1],
  };
}

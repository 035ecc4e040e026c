// Reads a DICOM SEG the way OHIF v3 does, and prints each segment's label and pixel extent as JSON on stdout.
//
//   node read_seg.mjs SEG.dcm SOURCE_SOP_INSTANCE_UID ROWS:COLUMNS
//
// @cornerstonejs/adapters' Segmentation.generateToolState (OHIF's cornerstone-dicom-seg extension calls it) turns the
// SEG into labelmaps over the referenced image, with cornerstone's metadata registry answering for that image.

import fs from 'node:fs';
import { adaptersSEG } from '@cornerstonejs/adapters';
import { metaData } from '@cornerstonejs/core';
import { imagePlaneModule } from './images.mjs';

const [segPath, sourceUID, size] = process.argv.slice(2);
const [rows, columns] = size.split(':').map(Number);
const imageId = `cxr:${sourceUID}`;

const modules = {
  imagePlaneModule: imagePlaneModule(rows, columns),
  imagePixelModule: { rows, columns, bitsAllocated: 16, bitsStored: 12, highBit: 11, pixelRepresentation: 0,
    samplesPerPixel: 1, photometricInterpretation: 'MONOCHROME2' },
  generalSeriesModule: { modality: 'CR', seriesInstanceUID: '1.2.826.0.1.3680043.10.2' },
  generalImageModule: { sopInstanceUID: sourceUID, instanceNumber: 1 },
  sopCommonModule: { sopInstanceUID: sourceUID, sopClassUID: '1.2.840.10008.5.1.4.1.1.1' },
  instance: { SOPInstanceUID: sourceUID, Rows: rows, Columns: columns, ImagePositionPatient: [0, 0, 0],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0], PixelSpacing: [1, 1] },
};
const custom = new Map();
metaData.addProvider((type, id) => {
  if (custom.has(`${type}|${id}`)) return custom.get(`${type}|${id}`);
  return id === imageId ? modules[type] : undefined;
}, 10000);
const provider = {
  get: (type, id) => metaData.get(type, id),
  addCustomMetadata: (id, type, value) => custom.set(`${type}|${id}`, value),
};

const log = console.log;
console.log = (...args) => console.error(...args);
const bytes = fs.readFileSync(segPath);
const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
try {
  const state = await adaptersSEG.Cornerstone3D.Segmentation.generateToolState([imageId], buffer, provider);
  const extents = {};
  for (const layer of state.labelMapImages) {
    for (const image of layer) {
      const pixels = image.voxelManager ? image.voxelManager.getScalarData() : image.getPixelData();
      for (let i = 0; i < pixels.length; i++) {
        const segment = pixels[i];
        if (!segment) continue;
        const x = i % columns;
        const y = Math.floor(i / columns);
        const e = (extents[segment] ||= { pixels: 0, xMin: x, yMin: y, xMax: x, yMax: y });
        e.pixels += 1;
        e.xMin = Math.min(e.xMin, x);
        e.yMin = Math.min(e.yMin, y);
        e.xMax = Math.max(e.xMax, x);
        e.yMax = Math.max(e.yMax, y);
      }
    }
  }
  const segments = Object.entries(state.segMetadata.data)
    .filter(([, meta]) => meta)
    .map(([number, meta]) => ({
      number: Number(number),
      label: meta.SegmentLabel,
      type: meta.SegmentedPropertyTypeCodeSequence?.CodeMeaning ?? null,
      extent: extents[number] || null,
    }));
  log(JSON.stringify({ segments, overlapping: Boolean(state.overlappingSegments), error: null }));
} catch (error) {
  log(JSON.stringify({ segments: [], overlapping: false, error: String(error && error.message ? error.message : error) }));
}

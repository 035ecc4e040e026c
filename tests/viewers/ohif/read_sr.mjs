// Reads a DICOM SR the way OHIF v3 does, and prints what it would show, as JSON on stdout.
//
//   node read_sr.mjs SR.dcm ROWS:COLUMNS
//
// Two readers, both of OHIF's own code path:
//  - "hydrated": @cornerstonejs/adapters' MeasurementReport.generateToolState, which OHIF's cornerstone-dicom-sr
//    extension calls to turn a TID 1500 SR into annotations (measurement tracking), with cornerstone's metadata
//    registry answering for the referenced images;
//  - "readOnly": the checks OHIF's SR viewport makes before it draws an SR read-only (a port of
//    extensions/cornerstone-dicom-sr getSopClassHandlerModule: the 126000 root, the 126010 container, 125007 groups
//    merged by their Tracking Unique Identifier, a group-level SCOORD whose IMAGE child names the referenced image).
// Coordinates come back in image pixels through cornerstone's own worldToImageCoords.

import fs from 'node:fs';
import dcmjs from 'dcmjs';
import { adaptersSR } from '@cornerstonejs/adapters';
import { metaData, utilities } from '@cornerstonejs/core';
import { imagePlaneModule } from './images.mjs';

const [srPath, size] = process.argv.slice(2);
const [rows, columns] = (size || '0:0').split(':').map(Number);

function readDataset(path) {
  const bytes = fs.readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const message = dcmjs.data.DicomMessage.readFile(buffer);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(message.dict);
}

const asArray = value => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const code = item => asArray(item.ConceptNameCodeSequence)[0] || {};

function referencedImages(ds) {
  const found = new Set();
  const walk = items => {
    for (const item of asArray(items)) {
      for (const ref of asArray(item.ReferencedSOPSequence)) found.add(ref.ReferencedSOPInstanceUID);
      walk(item.ContentSequence);
    }
  };
  walk(ds.ContentSequence);
  return [...found];
}

// Every referenced image is a plain image: origin at 0, axes along x and y, one unit per pixel.
function registerImages(sopInstanceUIDs) {
  const imageIds = {};
  for (const uid of sopInstanceUIDs) imageIds[`${uid}:1`] = `cxr:${uid}`;
  metaData.addProvider((type, imageId) => {
    if (!String(imageId).startsWith('cxr:')) return undefined;
    if (type === 'imagePlaneModule') return imagePlaneModule(rows, columns);
    if (type === 'generalSeriesModule') return { modality: 'CR' };
    return undefined;
  }, 10000);
  return imageIds;
}

function hydrated(ds, imageIds) {
  const toolState = adaptersSR.Cornerstone3D.MeasurementReport.generateToolState(ds, imageIds, metaData, {});
  const measurements = [];
  for (const [toolType, states] of Object.entries(toolState)) {
    for (const state of states) {
      const imageId = state.annotation.metadata.referencedImageId;
      const points = (state.annotation.data.handles.points || []).map(world =>
        utilities.worldToImageCoords(imageId, world)
      );
      measurements.push({
        toolType,
        label: state.description ?? state.annotation.data.label ?? null,
        referencedSOPInstanceUID: state.sopInstanceUid,
        trackingUniqueIdentifier: state.TrackingUniqueIdentifier ?? null,
        points,
      });
    }
  }
  return measurements;
}

function readOnly(ds) {
  if (code(ds).CodeValue !== '126000') throw new Error('not a TID 1500 Imaging Measurement Report');
  const container = asArray(ds.ContentSequence).find(item => code(item).CodeValue === '126010');
  if (!container) throw new Error('no Imaging Measurements (126010) container');
  const merged = new Map();
  for (const group of asArray(container.ContentSequence).filter(item => code(item).CodeValue === '125007')) {
    const items = asArray(group.ContentSequence);
    const tracking = items.find(item => code(item).CodeValue === '112040');
    // OHIF reads .UID of this item unguarded: without it the whole SR fails to load.
    if (!tracking) throw new Error('a measurement group has no Tracking Unique Identifier (112040)');
    merged.set(tracking.UID, [...(merged.get(tracking.UID) || []), ...items]);
  }
  const measurements = [];
  for (const [uid, items] of merged) {
    const graphic = items.find(item => item.ValueType === 'SCOORD');
    if (!graphic) continue; // OHIF shows these as text only
    const image = asArray(graphic.ContentSequence)[0];
    const reference = image && asArray(image.ReferencedSOPSequence)[0];
    if (!reference) throw new Error('a SCOORD names no referenced image');
    const trackingIdentifier = items.find(item => code(item).CodeValue === '112039');
    measurements.push({
      trackingUniqueIdentifier: uid,
      trackingIdentifier: trackingIdentifier ? trackingIdentifier.TextValue : null,
      graphicType: graphic.GraphicType,
      graphicData: asArray(graphic.GraphicData),
      referencedSOPInstanceUID: reference.ReferencedSOPInstanceUID,
      referencedSOPClassUID: reference.ReferencedSOPClassUID,
    });
  }
  return measurements;
}

function attempt(read) {
  try {
    return { measurements: read(), error: null };
  } catch (error) {
    return { measurements: [], error: String(error && error.message ? error.message : error) };
  }
}

const ds = readDataset(srPath);
const imageIds = registerImages(referencedImages(ds));
// The adapters log each group they cannot read through loglevel, on stdout; keep stdout for the JSON.
const log = console.log;
console.log = (...args) => console.error(...args);
const result = { hydrated: attempt(() => hydrated(ds, imageIds)), readOnly: attempt(() => readOnly(ds)) };
log(JSON.stringify(result));
